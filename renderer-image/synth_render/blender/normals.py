"""Shading normals computed by us, the same bits in every process: what makes a re-render exact.

Blender computes a mesh's vertex and corner normals itself, and on this build (5.0) the result
differs in the last bit from one process to the next (an accumulation whose order depends on
memory layout: with ASLR off the same process gives the same bits every time). A worker builds
its shared meshes once and a fresh ``synthctl render-sample`` process builds them again, so the
two saw normals one ULP apart, Cycles' shading followed, and about one sample in two had 1-3
pixels one grey level apart. Depth, object index and therefore every label were always exact.

:func:`freeze` replaces a mesh's normals with ones computed here in float64 numpy (a fixed order
of operations, so the same bytes in every process) and stores them as Blender's "free" custom
normals (a ``custom_normal`` float attribute on the corner domain, used as is by Blender and
Cycles). The math (pure, in :func:`corner_normals`): Newell face normals; a smooth corner's normal is the
corner-angle-weighted sum of the normals of the faces in its fan (the smooth faces around its
vertex reached across edges that are not sharp, as Blender groups them); a flat face's corners
take the face's normal. Sharp edges and flat faces are read from the mesh as Blender left them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ATTRIBUTE = "custom_normal"


def corner_normals(positions: np.ndarray, corner_vert: np.ndarray, corner_edge: np.ndarray,
                   loop_start: np.ndarray, loop_total: np.ndarray, sharp_face: np.ndarray,
                   sharp_edge: np.ndarray) -> np.ndarray:
    """(L, 3) float32 unit normals of a mesh's corners (see the module docstring); pure numpy."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    cv, ce = np.asarray(corner_vert, dtype=np.int64), np.asarray(corner_edge, dtype=np.int64)
    start, total = np.asarray(loop_start, dtype=np.int64), np.asarray(loop_total, dtype=np.int64)
    n_faces, n_corners = len(start), len(cv)
    face = np.repeat(np.arange(n_faces), total)
    pos_in_face = np.arange(n_corners) - start[face]
    nxt = start[face] + (pos_in_face + 1) % total[face]
    prv = start[face] + (pos_in_face - 1) % total[face]
    a, b = p[cv], p[cv[nxt]]
    cross = np.cross(a, b)
    fn = np.stack([np.bincount(face, weights=cross[:, k], minlength=n_faces) for k in range(3)], axis=1)
    fn = _unit(fn, fallback=(0.0, 0.0, 1.0))
    e1, e2 = _unit(p[cv[prv]] - a, fallback=(0.0, 0.0, 0.0)), _unit(b - a, fallback=(0.0, 0.0, 0.0))
    weight = np.arccos(np.clip(np.einsum("ij,ij->i", e1, e2), -1.0, 1.0))
    flat = _flags(sharp_face, n_faces)
    sharp = _flags(sharp_edge, int(ce.max()) + 1 if n_corners else 0)
    fan = _fans(cv, ce, prv, face, flat, sharp)
    acc = np.stack([np.bincount(fan, weights=weight * fn[face, k], minlength=n_corners) for k in range(3)], axis=1)
    out = _unit(acc[fan], fallback=(0.0, 0.0, 0.0))
    use_face = flat[face] | (np.abs(out).sum(axis=1) == 0)
    out[use_face] = fn[face[use_face]]
    return out.astype(np.float32)


def _flags(values: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(values, dtype=bool).reshape(-1)
    return v if v.size == n else np.zeros(n, dtype=bool)


def _fans(cv: np.ndarray, ce: np.ndarray, prv: np.ndarray, face: np.ndarray, flat: np.ndarray,
          sharp: np.ndarray) -> np.ndarray:
    """A label per corner: corners of smooth faces around a vertex joined across smooth edges share one.

    Two corners at the same vertex are joined when their faces share an edge at that vertex which
    is not sharp, joins exactly two corners (manifold) and both faces are smooth (Blender's fans).
    """
    n = len(cv)
    corner = np.arange(n)
    # Each corner touches two edges at its vertex: the one to the next corner and the one from the previous.
    rec_edge = np.concatenate([ce, ce[prv]])
    rec_corner = np.concatenate([corner, corner])
    rec_vert = cv[rec_corner]
    order = np.lexsort((rec_corner, rec_vert, rec_edge))
    e, v, c = rec_edge[order], rec_vert[order], rec_corner[order]
    first = np.r_[True, (e[1:] != e[:-1]) | (v[1:] != v[:-1])]
    group = np.cumsum(first) - 1
    sizes = np.bincount(group)
    pair = np.flatnonzero(~first)  # the second record of a group: joined with the record before it
    ok = (sizes[group[pair]] == 2) & ~sharp[e[pair]] & ~flat[face[c[pair]]] & ~flat[face[c[pair - 1]]]
    left, right = c[pair - 1][ok], c[pair][ok]
    label = corner.copy()
    while left.size:
        low = np.minimum(label[left], label[right])
        new = label.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        new = new[new]  # pointer jumping: labels point at their group's smallest corner sooner
        if np.array_equal(new, label):
            break
        label = new
    return label


def _unit(v: np.ndarray, *, fallback: tuple[float, float, float]) -> np.ndarray:
    length = np.sqrt(np.einsum("ij,ij->i", v, v))
    good = length > 1e-20
    out = np.empty_like(v)
    out[good] = v[good] / length[good, None]
    out[~good] = fallback
    return out


def freeze(mesh: Any) -> None:
    """Store :func:`corner_normals` of ``mesh`` as its custom normals (same bytes in every process)."""
    n_verts, n_corners, n_faces = len(mesh.vertices), len(mesh.loops), len(mesh.polygons)
    if n_faces == 0:
        return
    co = np.empty(n_verts * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    cv, ce = np.empty(n_corners, dtype=np.int32), np.empty(n_corners, dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", cv)
    mesh.loops.foreach_get("edge_index", ce)
    start, total = np.empty(n_faces, dtype=np.int32), np.empty(n_faces, dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", start)
    mesh.polygons.foreach_get("loop_total", total)
    flat = _bool_attribute(mesh, "sharp_face", "FACE", n_faces)
    sharp = _bool_attribute(mesh, "sharp_edge", "EDGE", len(mesh.edges))
    normals = corner_normals(co, cv, ce, start, total, flat, sharp)
    old = mesh.attributes.get(ATTRIBUTE)
    if old is not None:
        mesh.attributes.remove(old)
    new = mesh.attributes.new(ATTRIBUTE, "FLOAT_VECTOR", "CORNER")
    new.data.foreach_set("vector", normals.reshape(-1))
    mesh.update()


def _bool_attribute(mesh: Any, name: str, domain: str, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    attr = mesh.attributes.get(name)
    if attr is not None and attr.domain == domain and attr.data_type == "BOOLEAN" and len(attr.data) == n:
        attr.data.foreach_get("value", out)
    return out


def canonicalize(mesh: Any) -> bool:
    """Put a mesh's faces (and their corners) in one order that depends only on its vertices and faces.

    ``bmesh.ops.create_uvsphere`` leaves its corners in an order that changes from one process to
    the next (same positions, same faces): every face is rotated to start at its smallest vertex
    index (winding kept) and the faces are sorted; flat faces and sharp edges are carried over.
    For meshes without corner data (UVs, colours): the shape meshes. Returns whether it changed.
    """
    n_verts, n_faces = len(mesh.vertices), len(mesh.polygons)
    if n_faces == 0 or len(mesh.uv_layers) or len(mesh.color_attributes):
        return False
    co = np.empty(n_verts * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    cv = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", cv)
    start, total = np.empty(n_faces, dtype=np.int32), np.empty(n_faces, dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", start)
    mesh.polygons.foreach_get("loop_total", total)
    faces = []
    for s, t in zip(start.tolist(), total.tolist(), strict=True):
        f = cv[s:s + t].tolist()
        k = f.index(min(f))
        faces.append(tuple(f[k:] + f[:k]))
    order = sorted(range(n_faces), key=faces.__getitem__)
    if order == list(range(n_faces)) and all(f == tuple(cv[s:s + len(f)].tolist()) for f, s in zip(faces, start.tolist(),
                                                                                                 strict=True)):
        return False
    flat = _bool_attribute(mesh, "sharp_face", "FACE", n_faces)
    sharp = _bool_attribute(mesh, "sharp_edge", "EDGE", len(mesh.edges))
    ev = np.empty(len(mesh.edges) * 2, dtype=np.int32)
    mesh.edges.foreach_get("vertices", ev)
    sharp_pairs = {tuple(sorted(p)) for p in ev.reshape(-1, 2)[sharp].tolist()}
    mesh.clear_geometry()
    mesh.from_pydata(co.reshape(-1, 3).tolist(), [], [faces[i] for i in order])
    if flat.any():
        mesh.attributes.new("sharp_face", "BOOLEAN", "FACE").data.foreach_set("value", flat[order])
    if sharp_pairs:
        ev = np.empty(len(mesh.edges) * 2, dtype=np.int32)
        mesh.edges.foreach_get("vertices", ev)
        flags = np.array([tuple(sorted(p)) in sharp_pairs for p in ev.reshape(-1, 2).tolist()], dtype=bool)
        mesh.attributes.new("sharp_edge", "BOOLEAN", "EDGE").data.foreach_set("value", flags)
    mesh.update()
    return True
