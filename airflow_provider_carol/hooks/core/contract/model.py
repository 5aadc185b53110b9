"""One row of the wire contract: an endpoint, its request, and each answer field read with its evidence."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_carol.hooks.core.endpoints import Endpoint

ASSUMED = "assumed"


@dataclass(frozen=True)
class Field:
    """One answer field the provider reads: its path (dotted; ``*`` is any key, ``[]`` any list item),
    alternatives that carry the same value, and the evidence, or ``assumed: why``.

    ``required``: the provider cannot work without it (``carol-check`` reports its absence as a mismatch).
    """

    path: str
    evidence: str
    required: bool = True
    alternatives: tuple[str, ...] = ()

    @property
    def assumed(self) -> bool:
        """No evidence: the shape is a guess that only a real tenant can settle."""
        return self.evidence.startswith(ASSUMED)

    @property
    def paths(self) -> tuple[str, ...]:
        """The path and its alternatives."""
        return (self.path, *self.alternatives)


@dataclass(frozen=True)
class Contract:
    """One endpoint: the request the provider sends and the answer fields it reads."""

    endpoint: Endpoint
    request: str
    fields: tuple[Field, ...] = ()
    answer: str = ""
    #: Answer paths whose keys are the user's data (staging fields, say): carol-check lists them as ``*``
    #: (``fnmatch`` patterns; a ``*`` in a field's path is one too).
    data_keys: tuple[str, ...] = ()

    def data_key_patterns(self) -> tuple[str, ...]:
        """Every pattern of a path whose keys are data: :attr:`data_keys` and each ``*`` of a field."""
        patterns = set(self.data_keys)
        for f in self.fields:
            for path in f.paths:
                parts = path.split(".")
                patterns.update(".".join(parts[:i]) for i, part in enumerate(parts) if part == "*")
        return tuple(sorted(patterns))
