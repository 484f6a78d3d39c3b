"""Joint groups of a transformer checkpoint: which matrices read one input,
and whether sharing a right factor pays (spec §10.4).

:func:`find_groups` finds, by name and shape, the matrices of a checkpoint
that read the same input:

- BERT style: ``<prefix>attention.self.{query,key,value}.weight``;
- LLaMA style: ``<prefix>self_attn.{q,k,v}_proj.weight`` and
  ``<prefix>mlp.{gate,up}_proj.weight``.

:func:`choose_encoding` then encodes a found group every way worth trying
-- each member alone, and jointly as the candidate subsets -- and keeps the
joint encoding only where it wins at the same target: a lower error of all
members together at equal bits per entry, or fewer bytes at an equal error
target, and no member worse off (see :func:`choose_encoding`).  The subsets tried follow what bench/joint.py measured on MiniLM:
query+key (value alone) wins for every scheme, adding value wins for lplr
but not for signcut, so an attention block tries both query+key+value and
query+key, and gate+up is tried as a pair.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Callable, Optional

import numpy as np

from .errors import ArgumentError, BudgetError
from .groups import Group, encode_group

# name pattern -> the member roles in their order; the subsets of roles to
# try jointly, largest first (the rest of the block is encoded alone).
_PATTERNS = (
    (re.compile(r"^(?P<prefix>(?:.*\.)?attention\.self\.)(?P<role>query|key|value)\.weight$"),
     ("query", "key", "value"), (("query", "key", "value"), ("query", "key"))),
    (re.compile(r"^(?P<prefix>(?:.*\.)?self_attn\.)(?P<role>q|k|v)_proj\.weight$"),
     ("q", "k", "v"), (("q", "k", "v"), ("q", "k"))),
    (re.compile(r"^(?P<prefix>(?:.*\.)?mlp\.)(?P<role>gate|up)_proj\.weight$"),
     ("gate", "up"), (("gate", "up"),)),
)


@dataclasses.dataclass
class Candidate:
    """The matrices of one block that read one input: ``members`` maps role
    to tensor name, in the pattern's order; ``subsets`` the tensor names to
    try as a group, largest first."""

    prefix: str
    members: dict
    subsets: list


def group_name(names: list) -> str:
    """A group's name: the dot-separated components its members' names share
    (``encoder.layer.0.attention.self`` for that block's query and key)."""
    parts = [n.split(".") for n in names]
    common = []
    for pieces in zip(*parts):
        if len(set(pieces)) != 1:
            break
        common.append(pieces[0])
    return ".".join(common) or "+".join(names)


def find_groups(shapes: dict, eligible: set) -> tuple:
    """(candidates, skipped) from ``shapes`` (tensor name → shape).

    A candidate needs at least two of its block's members in ``eligible``
    (2-D float tensors chosen for compression) with the same number of
    columns; a subset is tried only when all of its members are.
    ``skipped`` lists (block prefix, reason) for blocks found by name but
    left alone."""
    blocks: dict = {}
    for name in shapes:
        for index, (pattern, roles, subsets) in enumerate(_PATTERNS):
            match = pattern.match(name)
            if match:
                blocks.setdefault((index, match["prefix"]), {})[match["role"]] = name
                break
    candidates, skipped = [], []
    for (index, prefix), found in blocks.items():
        _, roles, subsets = _PATTERNS[index]
        members = {role: found[role] for role in roles if role in found}
        usable = {role: n for role, n in members.items() if n in eligible}
        left_out = [n for n in members.values() if n not in eligible]
        tried = []
        for subset in subsets:
            names = [usable[r] for r in subset if r in usable]
            if len(names) != len(subset):
                continue
            if len({shapes[n][1] for n in names}) != 1:
                continue
            tried.append(names)
        if not tried:
            why = ("not all members are 2-D float tensors chosen for compression: " + ", ".join(left_out)
                   if left_out else "its members have different numbers of columns: "
                   + ", ".join(f"{n} {'×'.join(map(str, shapes[n]))}" for n in members.values()))
            skipped.append((prefix.rstrip("."), why))
            continue
        candidates.append(Candidate(prefix, members, tried))
    return candidates, skipped


@dataclasses.dataclass
class Choice:
    """What :func:`choose_encoding` kept for one candidate block.

    ``group`` is the kept group (None: every member alone), ``name`` its
    name; ``alone`` the members encoded alone; ``errors`` maps a label of
    each encoding tried ("separate", or the roles joined by "+") to
    (error of all the block's members together, bytes of the block);
    ``notes`` says why a joint encoding could not be made."""

    name: str
    group: Optional[Group]
    alone: dict
    errors: dict
    kept: str
    notes: list
    roles: dict = dataclasses.field(default_factory=dict)  # tensor name -> its role in the block


def _squared_errors(arrays: dict, matrices: dict) -> dict:
    """name -> (‖A − Â‖_F², ‖A‖_F²)."""
    out = {}
    for name, a in arrays.items():
        a64 = a.astype(np.float64)
        out[name] = (float(np.sum((a64 - matrices[name].decode().astype(np.float64)) ** 2)), float(np.sum(a64 ** 2)))
    return out


def _ratio(num: float, den: float) -> float:
    return math.sqrt(num / den) if den > 0 else (0.0 if num == 0 else math.inf)


def block_error(squared: dict) -> float:
    """‖[A_i] − [Â_i]‖_F / ‖[A_i]‖_F over all members of a block, from
    their :func:`_squared_errors`."""
    return _ratio(sum(n for n, _ in squared.values()), sum(d for _, d in squared.values()))


def member_errors(squared: dict) -> dict:
    """name -> ‖A − Â‖_F / ‖A‖_F of each member, from its :func:`_squared_errors`."""
    return {name: _ratio(n, d) for name, (n, d) in squared.items()}


def _nbytes(matrices: dict, group: Optional[Group]) -> int:
    return (group.nbytes if group is not None else 0) + sum(m.nbytes for m in matrices.values())


def choose_encoding(candidate: Candidate, arrays: dict, alone: dict, scheme: str, options: dict,
                    encode_joint: Callable = encode_group) -> Choice:
    """Try the candidate's subsets jointly against ``alone`` (every member
    already encoded by itself) and keep the best.

    At a bits budget (or none) the winner has the lowest error of all the
    block's members together; at a ``rel_error`` target, the fewest bytes.
    A joint encoding is kept only when it beats the separate one (a tie
    keeps the members separate) and no member loses by it: at a budget each
    member's own error is at most its separate one, at an error target each
    member meets the target (the group's encoder bounds the stack's error,
    not each member's).  The member rule is measured, not a nicety: on
    MiniLM at 4 bits/entry, lplr's query+key+value group lowers the block's
    error by 9 % while value's own error rises by 3 %, and the model's
    embeddings get worse (mean cosine 0.57 -> 0.46); query+key with value
    alone keeps the model (0.57).  ``scheme`` "auto" tries both group schemes."""
    schemes = ("signcut", "lplr") if scheme == "auto" else (scheme,)
    by_bytes = options.get("rel_error") is not None
    joint_options = {k: v for k, v in options.items() if k != "tile_shape"}
    names = list(candidate.members.values())
    role_of = {n: r for r, n in candidate.members.items()}
    # Each member is decoded once alone and once per group it joins.
    squared_alone = _squared_errors(arrays, alone)
    errors = {"separate": (block_error(squared_alone), _nbytes(alone, None))}
    separate_members = member_errors(squared_alone)
    best_label, best_group, best_alone = "separate", None, alone
    notes = []

    def score(label):
        err, nbytes = errors[label]
        return (nbytes, err) if by_bytes else (err, nbytes)

    for subset in candidate.subsets:
        for group_scheme in schemes:
            label = "+".join(role_of[n] for n in subset) + (f" {group_scheme}" if len(schemes) > 1 else "")
            try:
                group = encode_joint({n: arrays[n] for n in subset}, scheme=group_scheme,
                                     name=group_name(subset), **joint_options)
            except (BudgetError, ArgumentError) as exc:
                notes.append(f"{label}: {exc}")
                continue
            rest = {n: alone[n] for n in names if n not in subset}
            squared_joint = _squared_errors({n: arrays[n] for n in subset}, dict(group.items()))
            errors[label] = (block_error({**squared_alone, **squared_joint}), _nbytes(rest, group))
            joint_members = member_errors(squared_joint)
            limit = ({n: options["rel_error"] for n in subset} if by_bytes else separate_members)
            losers = [n for n in subset if joint_members[n] > limit[n]]
            if losers:
                notes.append(f"{label}: not kept, " + ", ".join(
                    f"{role_of[n]} {joint_members[n]:.4g} > {limit[n]:.4g}" for n in losers)
                    + (" (the target)" if by_bytes else " (alone)"))
                continue
            if score(label) < score(best_label):
                best_label, best_group, best_alone = label, group, rest
    name = best_group.name if best_group is not None else group_name(names)
    return Choice(name, best_group, best_alone, errors, best_label, notes, role_of)


def group_where_it_wins(shapes: dict, matrices: dict, compressed: set, array_of: Callable, scheme: str,
                        options: dict, progress: Optional[Callable] = None, dtype_of: Optional[Callable] = None) -> tuple:
    """(matrices with joint groups where they win, choices), in the order of
    ``matrices``: a kept group stands, under its name, where its first member
    was, and its members leave the mapping.

    ``shapes`` maps every tensor name to its shape; ``compressed`` names the
    members encoded alone in ``matrices`` that may be grouped; ``array_of(name)``
    gives a member's float array (read only for the blocks found);
    ``dtype_of(name)`` its source dtype, kept by the group when the members
    agree; ``progress(fraction, block name)`` is called before each block.
    ``choices`` has one :class:`Choice` per block found by name, those left
    alone last with the reason."""
    candidates, skipped = find_groups(shapes, compressed)
    choices = []
    for i, candidate in enumerate(candidates):
        names = list(candidate.members.values())
        if progress is not None:
            progress(i / len(candidates), group_name(names))
        joint_options = dict(options)
        if dtype_of is not None and len({dtype_of(n) for n in names}) == 1:
            joint_options["source_dtype"] = dtype_of(names[0])
        arrays = {n: array_of(n) for n in names}
        choices.append(choose_encoding(candidate, arrays, {n: matrices[n] for n in names}, scheme, joint_options))
    kept = {member: choice for choice in choices if choice.group is not None for member in choice.group}
    out = {}
    for name, matrix in matrices.items():
        choice = kept.get(name)
        if choice is None:
            out[name] = matrix
        elif choice.name not in out:
            out[choice.name] = choice.group
    choices.extend(Choice(prefix, None, {}, {}, "separate", [why]) for prefix, why in skipped)
    return out, choices
