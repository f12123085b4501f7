"""Every module that touches Blender (``bpy``, ``bmesh``, ``mathutils``); the rest of synth_render is pure.

``renderer.BlenderRenderer`` is the render driver; the other modules are its parts: ``guard`` (the
``bpy`` import guard), ``cycles`` (devices and render settings), ``meshes`` (unit meshes of the
shapes), ``materials`` (Principled materials, procedural patterns, PBR texture sets), ``world``
(flat colour, fog and HDRI world), ``passes`` (AOVs, the extra ground-truth renders, reading the
EXR back), ``views`` and ``frames`` (multi-view and sequence renders), ``simulation`` (drawing
baked liquids and smoke) and ``assets`` (importing library assets).
"""
