"""synth_render: the renderer worker of parallel-synth (procedural scenes, Blender, shards)."""
