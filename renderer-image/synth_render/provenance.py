"""Which renderer image produced a shard: recorded in every shard manifest.

The operator sets ``SYNTH_RENDERER_IMAGE`` on rendering pods to the dataset's ``spec.image``.
Limitation: that is the image *reference* the pod was created with. When it is pinned
(``name@sha256:...``; the admin can require it with ``policy.requireImageDigest``) the digest is
exact; for a tag the container cannot learn the digest the kubelet resolved (that lives in the
pod's ``status.containerStatuses[].imageID``, and rendering pods have no API access), so
``imageDigest`` is null and only the tag is recorded. Local runs record neither.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

IMAGE_ENV = "SYNTH_RENDERER_IMAGE"
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def image_provenance(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """``{"image": reference or None, "imageDigest": "sha256:..." or None}`` for a shard manifest."""
    env = os.environ if env is None else env
    image = env.get(IMAGE_ENV) or None
    match = _DIGEST.search(image) if image else None
    return {"image": image, "imageDigest": match.group(1) if match else None}
