"""Keeping only attribute values that exist in a category's controlled lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from .model import AttributeValue, Category, MenuAttribute
from .normalize import segment_key

# A near miss ("Stainles steel", "Light-blue") is mapped when this similar to a listed value.
VALUE_MATCH_CUTOFF = 88.0
ATTRIBUTE_MATCH_CUTOFF = 85.0


@dataclass(frozen=True, slots=True)
class AssignedAttribute:
    id: str
    handle: str
    name: str
    values: tuple[AttributeValue, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "handle": self.handle,
            "name": self.name,
            "values": [{"id": v.id, "name": v.name} for v in self.values],
        }


@dataclass(frozen=True, slots=True)
class DroppedValue:
    attribute: str
    value: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"attribute": self.attribute, "value": self.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class MappedValue:
    """A value that was not in the list as written but close to one that is."""

    attribute: str
    given: str
    value: AttributeValue


@dataclass(frozen=True, slots=True)
class ValidatedAttributes:
    attributes: tuple[AssignedAttribute, ...] = ()
    dropped: tuple[DroppedValue, ...] = ()
    mapped: tuple[MappedValue, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "attributes": [a.to_dict() for a in self.attributes],
            "dropped_values": [d.to_dict() for d in self.dropped],
            "mapped_values": [{"attribute": m.attribute, "given": m.given, "value": m.value.name} for m in self.mapped],
        }


class _ValueList:
    """One attribute's controlled list, looked up by name, handle or either's normalised form."""

    def __init__(self, values: tuple[AttributeValue, ...]) -> None:
        self._exact: dict[str, AttributeValue] = {}
        for value in values:
            suffix = value.handle.rsplit("__", 1)[-1]
            for spelling in (value.name, value.handle, suffix, value.id):
                self._exact.setdefault(spelling.casefold(), value)
            self._exact.setdefault(segment_key(value.name), value)
        self._values = values
        self._keys = [segment_key(v.name) for v in values]

    def find(self, given: str) -> tuple[AttributeValue | None, bool]:
        """The listed value and whether it was an exact match."""
        exact = self._exact.get(given.casefold()) or self._exact.get(segment_key(given))
        if exact is not None:
            return exact, True
        near = process.extractOne(segment_key(given), self._keys, scorer=fuzz.ratio, score_cutoff=VALUE_MATCH_CUTOFF)
        return (self._values[near[2]], False) if near else (None, False)


class AttributeValidator:
    """Validates what a model proposed for a category's attributes against the taxonomy."""

    def __init__(self) -> None:
        self._lists: dict[str, _ValueList] = {}

    def validate(self, category: Category, proposed: Mapping[str, object]) -> ValidatedAttributes:
        assigned: list[AssignedAttribute] = []
        dropped: list[DroppedValue] = []
        mapped: list[MappedValue] = []
        for given_attribute, given_values in proposed.items():
            attribute = _find_attribute(category, str(given_attribute))
            values = list(_as_texts(given_values))
            if attribute is None:
                reason = f"{category.name} has no attribute {given_attribute!r}"
                dropped.extend(DroppedValue(str(given_attribute), v, reason) for v in values)
                continue
            kept = self._keep_listed(attribute, values, dropped, mapped)
            if kept:
                assigned.append(AssignedAttribute(attribute.id, attribute.handle, attribute.name, kept))
        return ValidatedAttributes(tuple(assigned), tuple(dropped), tuple(mapped))

    def _keep_listed(
        self,
        attribute: MenuAttribute,
        values: list[str],
        dropped: list[DroppedValue],
        mapped: list[MappedValue],
    ) -> tuple[AttributeValue, ...]:
        value_list = self._lists.get(attribute.id)
        if value_list is None:
            value_list = self._lists[attribute.id] = _ValueList(attribute.values)
        kept: dict[str, AttributeValue] = {}
        for given in values:
            value, exact = value_list.find(given) if given.strip() else (None, False)
            if value is None:
                dropped.append(DroppedValue(attribute.handle, given, f"not a listed value of {attribute.name}"))
                continue
            if not exact:
                mapped.append(MappedValue(attribute.handle, given, value))
            kept.setdefault(value.id, value)
        return tuple(kept.values())


def _find_attribute(category: Category, given: str) -> MenuAttribute | None:
    wanted = given.strip().casefold()
    for attribute in category.attributes:
        if wanted in (attribute.handle, attribute.name.casefold(), attribute.id.casefold()):
            return attribute
    key = segment_key(given)
    names = [segment_key(a.name) for a in category.attributes]
    near = process.extractOne(key, names, scorer=fuzz.ratio, score_cutoff=ATTRIBUTE_MATCH_CUTOFF) if key else None
    return category.attributes[near[2]] if near else None


def _as_texts(values: object) -> Iterable[str]:
    """A model emits a value, a list of values, or null."""
    if values is None:
        return ()
    if isinstance(values, str | int | float):
        return (str(values),)
    if isinstance(values, Iterable) and not isinstance(values, Mapping):
        return tuple(str(v) for v in values if v is not None)
    return (str(values),)
