"""Lay an imported model's layers out as a network document, with a block for each structure its names repeat.

Exporters name nodes after the modules that made them (``layer1/layer1_0/conv1/Conv``), so the layers of
one module instance share a scope (``layer1/layer1_0``). A scope becomes a block instance when its layers
are consecutive, read one tensor from outside (its first layer reads it), and are read from outside only
through their last layer. Scopes whose layers have the same local names, ops, attribute keys and wiring
share one block (``block1``, ``block2``, ... in order of first use); attribute values that differ between
them become the block's arguments, named after the attribute (``filters``, ``filters2``). A structure that
occurs once stays plain layers.

An instance is written ``{use: block1, name: layer1/layer1_0, filters: 64}``, so its layers expand to
``layer1/layer1_0.conv1/Conv``: the node's name with the ``/`` after the scope become hwsim's ``.``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hwsim.spec.yamlio import Loc

NETWORK_INPUT = "input"
"""How a layer names the network's input (and, inside a block, the block's input)."""


class FlatLayer(NamedTuple):
    """One translated node: its hwsim name, its entry without name and inputs, and its producers' names."""

    name: str
    entry: dict[str, Any]
    inputs: tuple[str, ...]


class _Instance(NamedTuple):
    scope: str
    start: int
    end: int
    """Layers ``start`` to ``end - 1``."""
    external: str
    """The one tensor from outside that it reads, named by its producer."""


def _local(scope: str, name: str) -> str:
    return name[len(scope) + 1 :]


def _instance(
    layers: list[FlatLayer], scope: str, start: int, end: int, readers: dict[str, set[int]]
) -> _Instance | None:
    """The layers ``start:end`` of ``scope`` as a block instance, or None when they cannot be one (module docstring)."""
    members = layers[start:end]
    names = {layer.name for layer in members}
    if f"{scope}/{NETWORK_INPUT}" in names:
        return None
    outside = {name for layer in members for name in layer.inputs if name not in names}
    if len(outside) != 1 or set(members[0].inputs) != outside:
        return None
    for layer in members[:-1]:
        if any(not start <= reader < end for reader in readers.get(layer.name, ())):
            return None
    return _Instance(scope, start, end, outside.pop())


def _signature(layers: list[FlatLayer], instance: _Instance) -> tuple[Any, ...]:
    """What instances of one block share: local names, ops, attribute keys and wiring."""
    cut, external = len(instance.scope) + 1, instance.external
    return tuple(
        (
            layer.name[cut:],
            layer.entry["op"],
            tuple(layer.entry),
            tuple(NETWORK_INPUT if name == external else name[cut:] for name in layer.inputs),
        )
        for layer in layers[instance.start : instance.end]
    )


def _instances(layers: list[FlatLayer]) -> list[list[_Instance]]:
    """Groups of two or more non-overlapping instances of one structure, the groups covering most layers first."""
    readers: dict[str, set[int]] = {}
    for index, layer in enumerate(layers):
        for name in layer.inputs:
            readers.setdefault(name, set()).add(index)
    spans: dict[str, list[int]] = {}
    for index, layer in enumerate(layers):
        name = layer.name
        cut = name.find("/")
        while cut > 0:  # every scope the name is in: "a", "a/b" of "a/b/c"
            span = spans.setdefault(name[:cut], [index, index, 0])
            span[1], span[2] = index, span[2] + 1
            cut = name.find("/", cut + 1)
    alike: dict[tuple[int, str, str], list[tuple[str, int, int]]] = {}
    for scope, (first, last, count) in spans.items():
        if count > 1 and last - first + 1 == count:  # a scope's layers one after another
            cut = len(scope) + 1  # a cheap first sort: the length, the first and the last local names
            alike.setdefault((count, layers[first].name[cut:], layers[last].name[cut:]), []).append(
                (scope, first, last)
            )
    groups: dict[tuple[Any, ...], list[_Instance]] = {}
    for scopes in alike.values():
        for scope, first, last in scopes if len(scopes) > 1 else ():
            instance = _instance(layers, scope, first, last + 1, readers)
            if instance is not None:
                groups.setdefault(_signature(layers, instance), []).append(instance)
    ranked = sorted(
        (group for group in groups.values() if len(group) > 1),
        key=lambda group: (-len(group) * (group[0].end - group[0].start), group[0].start),
    )
    taken: set[int] = set()
    chosen = []
    for group in ranked:
        free = [i for i in group if not taken & set(range(i.start, i.end))]
        if len(free) > 1:
            chosen.append(free)
            for instance in free:
                taken.update(range(instance.start, instance.end))
    return sorted(chosen, key=lambda group: group[0].start)


def _arguments(layers: list[FlatLayer], group: list[_Instance]) -> dict[tuple[int, str], str]:
    """(position in the block, attribute) -> argument name, for the values that differ between instances."""
    size = group[0].end - group[0].start
    varying: dict[tuple[str, tuple[str, ...]], list[tuple[int, str]]] = {}
    for position in range(size):
        for key in layers[group[0].start + position].entry:
            values = tuple(repr(layers[i.start + position].entry[key]) for i in group)
            if key != "op" and len(set(values)) > 1:  # the same values of the same attribute: one argument
                varying.setdefault((key, values), []).append((position, key))
    names: dict[tuple[int, str], str] = {}
    used: set[str] = set()
    for places in varying.values():
        base = places[0][1]
        name, count = base, 2
        while name in used:
            name, count = f"{base}{count}", count + 1
        used.add(name)
        names.update({place: name for place in places})
    return names


def document_of(
    layers: list[FlatLayer], name: str, description: str, input_shape: tuple[int, int, int]
) -> tuple[dict[str, Any], dict[Loc, str], dict[str, str]]:
    """The network document; where each entry came from (its loc -> a layer's name); each layer's final name."""
    groups = _instances(layers)
    renames = {layer.name: layer.name for layer in layers}
    locs: dict[Loc, str] = {}
    blocks: dict[str, Any] = {}
    uses: dict[int, tuple[str, _Instance, dict[str, Any]]] = {}
    for number, group in enumerate(groups, start=1):
        block = f"block{number}"
        arguments = _arguments(layers, group)
        first = group[0]
        template = []
        for position, layer in enumerate(layers[first.start : first.end]):
            entry: dict[str, Any] = {"op": layer.entry["op"], "name": _local(first.scope, layer.name)}
            entry.update(
                {k: f"${arguments[position, k]}" if (position, k) in arguments else v for k, v in layer.entry.items()}
            )
            refs = [NETWORK_INPUT if n == first.external else _local(first.scope, n) for n in layer.inputs]
            previous = _local(first.scope, layers[first.start + position - 1].name) if position else NETWORK_INPUT
            if refs != [previous]:
                entry["inputs"] = refs
            template.append(entry)
            locs["blocks", block, "layers", position] = layer.name
        blocks[block] = {
            "args": sorted(set(arguments.values()), key=list(arguments.values()).index),
            "layers": template,
        }
        for instance in group:
            values = {
                argument: layers[instance.start + position].entry[key]
                for (position, key), argument in arguments.items()
            }
            uses[instance.start] = (block, instance, values)
            for layer in layers[instance.start : instance.end]:
                renames[layer.name] = f"{instance.scope}.{_local(instance.scope, layer.name)}"
    entries: list[dict[str, Any]] = []
    previous = NETWORK_INPUT
    index = 0
    while index < len(layers):
        layer = layers[index]
        if index in uses:
            block, instance, values = uses[index]
            entry = {"use": block, "name": instance.scope, **values}
            if renames.get(instance.external, NETWORK_INPUT) != previous:
                entry["inputs"] = [renames.get(instance.external, NETWORK_INPUT)]
            locs["layers", len(entries)] = layer.name
            entries.append(entry)
            previous = renames[layers[instance.end - 1].name]
            index = instance.end
            continue
        entry = {"op": layer.entry["op"], "name": layer.name, **{k: v for k, v in layer.entry.items() if k != "op"}}
        refs = [renames.get(n, NETWORK_INPUT) for n in layer.inputs]
        if refs != [previous]:
            entry["inputs"] = refs
        locs["layers", len(entries)] = layer.name
        entries.append(entry)
        previous = layer.name
        index += 1
    data: dict[str, Any] = {"name": name, "description": description, "input": list(input_shape)}
    if blocks:
        data["blocks"] = blocks
    data["layers"] = entries
    return data, locs, renames
