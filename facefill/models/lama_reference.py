"""Speed reference: Big-LaMa's generator with random weights (Suvorov et al., "Resolution-robust Large Mask
Inpainting with Fourier Convolutions", WACV'22). For ``facefill bench`` only: it is *not* an inpainting model.

The network follows the paper (sec. 3, fig. 2) at the authors' published Big-LaMa configuration
(``configs/training/big-lama.yaml``: ``ffc_resnet``, ``input_nc 4``, ``ngf 64``, ``n_downsampling 3``,
``n_blocks 18``, ``ratio_gin = ratio_gout = 0.75`` in the residual blocks, 0 before them, ``enable_lfu false``,
``add_out_act sigmoid``):
  - input: the masked image ``x * (1 - m)`` (in [0, 1], as LaMa works) concatenated with the mask ``m``;
  - ReflectionPad(3) + 7x7 conv to ``ngf`` + BN + ReLU; three stride-2 3x3 convs (+ BN + ReLU) to ``8 ngf``, all
    purely local; the last one already splits its output into 25% local / 75% global channels;
  - 18 residual blocks of two fast Fourier convolutions (FFC, Chi et al., NeurIPS'20) each. An FFC mixes a local
    and a global branch: local->local, local->global and global->local are ordinary 3x3 convs (reflect padding,
    no bias); global->global is the spectral transform: 1x1 conv to half width + BN + ReLU, a Fourier unit (real
    2-D FFT, ortho norm; a 1x1 conv + BN + ReLU on the stacked real / imaginary parts; inverse FFT), added to
    its input, then a 1x1 conv back to full width (eq. 1-3 of the paper). No local Fourier unit (``enable_lfu``
    off, as in Big-LaMa). Every FFC output branch gets BN + ReLU;
  - local and global channels concatenated, three 3x3 transposed convs (stride 2, + BN + ReLU) back to ``ngf``,
    ReflectionPad(3) + 7x7 conv to RGB, sigmoid.
At the default configuration this is 50,975,875 (51.0M) parameters, the published size of Big-LaMa's generator (~51M).

The weights are random (speed does not depend on them) and there are none to load: ``facefill.load`` and
``create_model("lama_reference")`` refuse it with an error that says so; the benchmark builds it with
``create_model("lama_reference", random_weights=True)``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..inpainter import NetworkInpainter
from ..pretrained import WeightsError
from ..registry import register_model


class SpeedReferenceOnly(WeightsError, ValueError):
    """Raised when the speed reference is asked for as an inpainting model (loading, training, plain creation)."""


class FourierUnit(nn.Module):
    """Real FFT over (H, W) -> 1x1 conv + BN + ReLU on the (real, imaginary) channel pairs -> inverse FFT."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # the FFTs run in fp32 (as the authors' code does under mixed precision): torch has no bf16 FFT, so under
        # bf16 autocast (facefill bench on a bf16 CPU or a GPU) they would fail; the 1x1 conv follows autocast
        with torch.autocast(x.device.type, enabled=False):
            spec = torch.fft.rfft2(x.float(), norm="ortho")  # (b, c, h, w//2+1) complex
        # channel layout (c, re/im) as the authors' view/permute, so 1x1 weights are interchangeable
        spec = torch.stack((spec.real, spec.imag), 2).reshape(b, 2 * c, h, -1)
        spec = self.relu(self.bn(self.conv(spec))).view(b, c, 2, h, -1).float()
        with torch.autocast(x.device.type, enabled=False):
            return torch.fft.irfft2(torch.complex(spec[:, :, 0], spec[:, :, 1]), s=(h, w), norm="ortho")


class SpectralTransform(nn.Module):
    """The global->global path of an FFC: 1x1 down to half width, Fourier unit with a skip, 1x1 back up."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.downsample = nn.AvgPool2d(2) if stride == 2 else nn.Identity()
        self.reduce = nn.Sequential(nn.Conv2d(in_ch, out_ch // 2, 1, bias=False), nn.BatchNorm2d(out_ch // 2),
                                    nn.ReLU(inplace=True))
        self.fu = FourierUnit(out_ch // 2)
        self.expand = nn.Conv2d(out_ch // 2, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.downsample(x))
        return self.expand(x + self.fu(x))


class FFC(nn.Module):
    """Fast Fourier convolution on a (local, global) pair of tensors; a branch with no channels is ``None``.
    Each output branch is followed by BN + ReLU (the authors' ``FFC_BN_ACT``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        in_g, out_g = int(in_ch * ratio_gin), int(out_ch * ratio_gout)
        in_l, out_l = in_ch - in_g, out_ch - out_g

        def conv(i: int, o: int) -> nn.Module | None:
            if not (i and o):
                return None
            return nn.Conv2d(i, o, kernel_size, stride, padding, bias=False, padding_mode="reflect")

        self.l2l, self.l2g, self.g2l = conv(in_l, out_l), conv(in_l, out_g), conv(in_g, out_l)
        self.g2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None
        self.out_l = nn.Sequential(nn.BatchNorm2d(out_l), nn.ReLU(inplace=True)) if out_l else None
        self.out_g = nn.Sequential(nn.BatchNorm2d(out_g), nn.ReLU(inplace=True)) if out_g else None

    def forward(self, x: tuple[torch.Tensor | None, torch.Tensor | None]):
        x_l, x_g = x
        parts_l = [f(t) for f, t in ((self.l2l, x_l), (self.g2l, x_g)) if f is not None and t is not None]
        parts_g = [f(t) for f, t in ((self.l2g, x_l), (self.g2g, x_g)) if f is not None and t is not None]
        y_l = self.out_l(_add(parts_l)) if self.out_l is not None else None
        y_g = self.out_g(_add(parts_g)) if self.out_g is not None else None
        return y_l, y_g


def _add(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


class FFCResBlock(nn.Module):
    """Two 3x3 FFCs with identity skips on both branches."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        self.conv1 = FFC(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFC(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x):
        y_l, y_g = self.conv2(self.conv1(x))
        return x[0] + y_l, x[1] + y_g


class LamaReference(NetworkInpainter):
    """Big-LaMa's FFC ResNet generator with random weights, for timing only (see the module docstring).

    ``forward(image, mask)``: ``image`` ``(B, 3, H, W)`` in [-1, 1], ``mask`` ``(B, 1, H, W)`` with 1 = hole, H and
    W multiples of ``pad_multiple`` (2 ** n_downsampling); returns ``{"output": (B, 3, H, W) in [-1, 1]}`` (LaMa's
    [0, 1] sigmoid output rescaled). Outputs are meaningless: the weights are random.
    """

    def __init__(self, ngf: int = 64, n_downsampling: int = 3, n_blocks: int = 18, ratio: float = 0.75,
                 resolution: int = 256):
        super().__init__()
        self.config = dict(ngf=ngf, n_downsampling=n_downsampling, n_blocks=n_blocks, ratio=ratio,
                           resolution=resolution)
        self.resolution = resolution
        self.pad_multiple = 2 ** n_downsampling
        self.pad = nn.ReflectionPad2d(3)
        self.head = FFC(4, ngf, 7, 0, 0)
        self.down = nn.Sequential(*[
            FFC(ngf * 2 ** i, ngf * 2 ** (i + 1), 3, 0, ratio if i == n_downsampling - 1 else 0, stride=2, padding=1)
            for i in range(n_downsampling)])
        self.blocks = nn.Sequential(*[FFCResBlock(ngf * 2 ** n_downsampling, ratio) for _ in range(n_blocks)])
        up = []
        for i in range(n_downsampling, 0, -1):
            c = ngf * 2 ** i
            up += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(c // 2),
                   nn.ReLU(inplace=True)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid())

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict:
        mask = mask.to(image.dtype)
        known = (image + 1) / 2 * (1 - mask)  # LaMa's images are in [0, 1]
        x = self.head((self.pad(torch.cat([known, mask], 1)), None))
        x_l, x_g = self.blocks(self.down(x))
        out = self.tail(self.up(torch.cat([x_l, x_g], 1)))
        return {"output": out * 2 - 1}


@register_model
def lama_reference(random_weights: bool = False, **kw) -> LamaReference:
    """Big-LaMa generator (Suvorov et al., WACV'22), random weights: speed reference only, not an inpainting model."""
    if not random_weights:
        raise SpeedReferenceOnly(
            "lama_reference is a speed reference only (Big-LaMa's generator with random weights), not an "
            "inpainting model: there are no weights to load or train. Time it with `facefill bench --model "
            "lama_reference`, or build it with create_model('lama_reference', random_weights=True)")
    return LamaReference(**kw)
