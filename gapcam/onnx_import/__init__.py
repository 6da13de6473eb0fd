"""``gapcam import``: turn any ONNX classifier with a GAP + linear head into a gapcam model.

The steps are separate modules so each can be read (and tested) on its own:

1. :mod:`.graph` - small read-only helpers over an ONNX graph (producers, constants, shapes);
2. :mod:`.head` - find the head (global average pooling, pass-through ops, the linear layer,
   an optional trailing softmax) or refuse in one line naming what was found;
3. :mod:`.fusion` - add the ``cam`` (bias-free 1x1 convolution with the linear weights) and
   ``features`` outputs, expose the pre-softmax ``logits``, make the batch dynamic;
4. :mod:`.checks` - the self-checks every model passes before anything is written;
5. :mod:`.importer` - the whole job: read, find, fuse, check, then write ``OUT.onnx`` + card.
"""

from gapcam.onnx_import.head import Head, find_head
from gapcam.onnx_import.importer import ImportResult, import_model, read_labels

__all__ = ["Head", "ImportResult", "find_head", "import_model", "read_labels"]
