"""Building blocks shared by two or more architectures."""
from .contextual_attention import ContextualAttention, flow_to_color
from .gated_conv import GatedConv2d, GatedUpConv2d
from .init import init_conv_
from .sn_conv import SNConvBlock, SNPatchDiscriminator

__all__ = [
    "ContextualAttention",
    "GatedConv2d",
    "GatedUpConv2d",
    "SNConvBlock",
    "SNPatchDiscriminator",
    "flow_to_color",
    "init_conv_",
]
