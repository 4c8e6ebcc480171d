"""The operator's GPU price table: price of one GPU-hour per GPU product. No built-in prices.

Configured by the operator's `--gpu-prices` / `LLMOPS_GPU_PRICES` (JSON or YAML), which the
Helm chart fills from the values `cost.currency` and `cost.gpuHourPrices`. A table that does
not validate (a negative price, a price that is not a number) turns cost off with a clear
message on every Model; it never stops the operator or blocks serving.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PRODUCT_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
"""A Kubernetes label value, as `nvidia.com/gpu.product` is (e.g. NVIDIA-H100-80GB-HBM3)."""


class PriceTable(BaseModel):
    """Prices per GPU-hour, keyed by the node label `nvidia.com/gpu.product`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    currency: str = Field(default="USD", min_length=1, max_length=16)
    gpu_hour_prices: dict[str, float] = Field(default_factory=dict, alias="gpuHourPrices")

    @field_validator("gpu_hour_prices")
    @classmethod
    def _valid_prices(cls, prices: dict[str, float]) -> dict[str, float]:
        for product, price in prices.items():
            if not PRODUCT_LABEL.fullmatch(product):
                raise ValueError(
                    f"{product!r} is not a GPU product as the node label nvidia.com/gpu.product "
                    "spells it (e.g. NVIDIA-H100-80GB-HBM3)"
                )
            if price != price or price in (float("inf"), float("-inf")):
                raise ValueError(f"price of {product} must be a finite number, got {price}")
            if price < 0:
                raise ValueError(f"price of {product} is {price}: a GPU-hour costs 0 or more")
        return prices


@dataclass(frozen=True)
class Prices:
    """The loaded table, or why there is none usable."""

    table: PriceTable | None = None
    error: str | None = None

    @property
    def configured(self) -> bool:
        return self.table is not None and bool(self.table.gpu_hour_prices)

    def price(self, product: str | None) -> float | None:
        """Price of one GPU-hour of `product`, None when it has none."""
        if self.table is None or product is None:
            return None
        return self.table.gpu_hour_prices.get(product)

    @property
    def currency(self) -> str | None:
        return self.table.currency if self.table is not None else None


def load_prices(text: str | None) -> Prices:
    """Parse the table; empty text means no prices (cost is shown as GPU-hours only)."""
    if text is None or not text.strip():
        return Prices()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return Prices(error=f"the GPU price table is not JSON or YAML: {exc}")
    if data is None:
        return Prices()
    if not isinstance(data, dict):
        return Prices(error="the GPU price table must be a mapping {currency, gpuHourPrices}")
    try:
        table = PriceTable.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        return Prices(error=f"the GPU price table is invalid at {where or 'top level'}: {first['msg']}")
    return Prices(table=table)
