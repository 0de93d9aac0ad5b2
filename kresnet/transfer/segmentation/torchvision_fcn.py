"""Import a torchvision FCN state dict (`fcn_resnet50`, `fcn_resnet101`) into kresnet's FCN.

torchvision's FCN is kresnet's with the recipe's `backbone = "resnet50b"` (7x7 stem, stride on the
3x3 conv), `output_stride = 8` (`replace_stride_with_dilation=[False, True, True]`), `aux = true`
and `dropout = 0.1`: the same `FCNHead` (3x3 conv to a quarter of the channels without bias, BN,
ReLU, dropout, 1x1 conv with bias) on stage 4 and, for the auxiliary logits, on stage 3, each
resized bilinearly (half-pixel centres, `align_corners=False`) to the input size. The file's keys
are `backbone.<ResNet name>`, `classifier.{0,1,4}` and `aux_classifier.{0,1,4}`.
"""

from kresnet.errors import UserError
from kresnet.models.weight_import import import_state_dict

# kresnet's `fcn_head` layers -> the indices of torchvision's `FCNHead` (an nn.Sequential).
_HEAD_PARTS = {"conv": 0, "bn": 1, "classifier": 4}
_HEADS = {"head": "classifier", "aux_head": "aux_classifier"}


def fcn_head_names(aux):
    """kresnet FCN head layer name -> torchvision module name, for the main head and optionally the auxiliary one."""
    heads = _HEADS if aux else {"head": "classifier"}
    return {f"{ours}_{part}": f"{theirs}.{index}" for ours, theirs in heads.items() for part, index in _HEAD_PARTS.items()}


def torchvision_fcn_classes(state):
    """The number of classes of a torchvision FCN state dict (its classifier's output channels)."""
    key = f"classifier.{_HEAD_PARTS['classifier']}.weight"
    if key not in state:
        raise UserError(f"the state dict has no key {key!r}: not a torchvision FCN (fcn_resnet50 / fcn_resnet101)")
    return int(state[key].shape[0])


def import_torchvision_fcn(model, state):
    """Copy a torchvision FCN state dict into a kresnet FCN (`build_fcn`) in place; returns the model.

    Every weight must be found and every tensor used, so an FCN without the auxiliary head refuses
    a file with one (and the reverse), naming the key.

    Args:
        model: a model from `kresnet.transfer.segmentation.fcn.build_fcn` on a ResNet-B backbone.
        state: dict. The state dict from `kresnet.models.weight_import.load_state_dict`.
    """
    aux = any(layer.name.startswith("aux_head_") for layer in model.layers)
    return import_state_dict(model, state, backbone_prefix="backbone.", head_names=fcn_head_names(aux))
