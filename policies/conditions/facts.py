"""The tags and resource facts conditions may read, frozen and bounded.

Tags (`principal.tags`, `resource.tags`) are maps of strings, the same bounds as the
stored ones (`organizations.tags`, which this pure package does not import: a test holds
them equal): at most `MAX_TAGS` entries, keys of at most `MAX_TAG_KEY_LENGTH` and values
of at most `MAX_TAG_VALUE_LENGTH` characters. So handing them to the CEL library, or a
condition reading them, costs a bounded amount. They are frozen once, when the facts are
built: a decision, and anything memoised from it, never sees them change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

MAX_TAGS = 50
MAX_TAG_KEY_LENGTH = 64
MAX_TAG_VALUE_LENGTH = 256

NO_TAGS: Mapping[str, str] = MappingProxyType({})


def frozen_tags(tags: Mapping[str, str] | None) -> Mapping[str, str]:
    """An immutable copy of `tags`; `ValueError` unless it is a bounded map of strings."""
    if not tags:
        if tags is None or isinstance(tags, Mapping):
            return NO_TAGS
        raise ValueError("tags are a mapping of strings to strings")
    if not isinstance(tags, Mapping):
        raise ValueError("tags are a mapping of strings to strings")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags, not {len(tags)}")
    copied: dict[str, str] = {}
    for key, value in tags.items():
        if type(key) is not str or not 0 < len(key) <= MAX_TAG_KEY_LENGTH:
            raise ValueError(f"a tag key is a string of 1 to {MAX_TAG_KEY_LENGTH} characters")
        if type(value) is not str or len(value) > MAX_TAG_VALUE_LENGTH:
            raise ValueError(f"a tag value has at most {MAX_TAG_VALUE_LENGTH} characters")
        copied[key] = value
    return MappingProxyType(copied)


def tags_hash(tags: Mapping[str, str]) -> int:
    return hash(frozenset(tags.items()))


@dataclass(frozen=True, slots=True)
class ResourceFacts:
    """The resource a question is about: its type key (`compute:instances`), id, project
    and tags. `id` is None for a resource not registered yet, asked about by type,
    project and tags (may I create one like this?). Ids are kept as strings."""

    type: str
    id: str | None
    project_id: str
    tags: Mapping[str, str] = field(default_factory=lambda: NO_TAGS)

    def __post_init__(self) -> None:
        if self.id is not None:
            object.__setattr__(self, "id", str(self.id))
            if not self.id:
                raise ValueError("a resource id is not empty (None: not registered yet)")
        object.__setattr__(self, "project_id", str(self.project_id))
        if type(self.type) is not str or not self.project_id:
            raise ValueError("a resource has a type key and a project")
        object.__setattr__(self, "tags", frozen_tags(self.tags))

    @classmethod
    def of(
        cls,
        *,
        type: str,
        id: object | None,
        project_id: object,
        tags: Mapping[str, str] | None = None,
    ) -> ResourceFacts:
        """The facts from ids of any kind (UUIDs are turned into strings)."""
        return cls(type, None if id is None else str(id), str(project_id), tags or NO_TAGS)

    def __hash__(self) -> int:
        return hash((self.type, self.id, self.project_id, tags_hash(self.tags)))
