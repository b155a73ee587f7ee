"""Object stores by URI (``file://`` and ``s3://``) with compare-and-swap writes.

Errors: an unreachable store raises :class:`~recsys_checks.core.errors.Unreachable`, a missing object
:class:`~recsys_checks.core.errors.NotFound`, a failed precondition :class:`~recsys_checks.core.errors.Conflict`,
bad credentials or a malformed URI :class:`~recsys_checks.core.errors.BadInput`.

- :mod:`.base`: the store interface and the ETag; :mod:`.files`: the file-store protocol; :mod:`.s3`: S3 (its read
  path in :mod:`.s3read`); :mod:`.router`: the store for a URI, :class:`TargetStores` for a target.
"""

from .base import MAX_OBJECT_BYTES, ObjectStore, etag_of
from .files import FileStore, file_path, file_path_text
from .router import TargetStores, open_store, stores_for
from .s3 import S3Store, s3_location

__all__ = ["FileStore", "MAX_OBJECT_BYTES", "ObjectStore", "S3Store", "TargetStores", "etag_of", "file_path",
           "file_path_text", "open_store", "s3_location",
           "stores_for"]
