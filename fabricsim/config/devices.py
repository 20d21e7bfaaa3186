"""Devices and their scale-up links: the public peak figures a compute-vs-communication estimate needs.

Peaks are dense BF16 tensor-core throughput per GPU (SXM parts) from NVIDIA's datasheets; the
datasheets' headline figures assume 2:4 structured sparsity, which doubles them (SPARSITY_SPEEDUP).
Link bandwidths are per GPU and bidirectional, as they are quoted; one direction carries half.
"""

from __future__ import annotations

from dataclasses import dataclass

SPARSITY_SPEEDUP = 2  # NVIDIA 2:4 structured sparsity: the "*with sparsity" datasheet figures are 2x dense


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    bf16_dense_tflops: float
    link: str  # the scale-up link it ships with
    source: str
    memory_bytes: int  # HBM per GPU

    def peak_flops(self, sparse: bool = False) -> float:
        return self.bf16_dense_tflops * 1e12 * (SPARSITY_SPEEDUP if sparse else 1)


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    bidirectional_GBps: float
    source: str

    @property
    def one_way_Bps(self) -> float:
        return self.bidirectional_GBps * 1e9 / 2


DEVICES = {device.name: device for device in (
    Device("a100", 312, "nvlink3", "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS (624 with sparsity); "
           "80 GB HBM2e (SXM 80GB)", 80 * 10**9),
    Device("h100", 989.4, "nvlink4", "NVIDIA H100 Tensor Core GPU datasheet, SXM: BF16 1979 TFLOPS with sparsity; "
           "80 GB HBM3", 80 * 10**9),
    Device("h800", 989.4, "nvlink4-h800", "NVIDIA H800 SXM5: H100 compute (BF16 1979 TFLOPS with sparsity); "
           "80 GB HBM3", 80 * 10**9),
    Device("b200", 2250, "nvlink5", "NVIDIA HGX B200 datasheet: FP16/BF16 36 PFLOPS with sparsity per 8 GPUs; "
           "1,440 GB of HBM3e per 8 GPUs", 180 * 10**9),
)}

LINKS = {link.name: link for link in (
    Link("pcie4", 64, "PCI-SIG PCIe 4.0 x16: 16 GT/s x 16 lanes, 32 GB/s per direction"),
    Link("pcie5", 128, "PCI-SIG PCIe 5.0 x16: 32 GT/s x 16 lanes, 64 GB/s per direction"),
    Link("nvlink3", 600, "NVIDIA A100 datasheet: NVLink 600 GB/s"),
    Link("nvlink4", 900, "NVIDIA H100 datasheet: NVLink 900 GB/s"),
    Link("nvlink4-h800", 400, "NVIDIA H800 SXM5: NVLink 400 GB/s"),
    Link("nvlink5", 1800, "NVIDIA B200: fifth-generation NVLink 1.8 TB/s"),
)}
