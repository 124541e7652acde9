"""The two encoders the alignment tab fits and compares, behind the interface the alignment fit
(`lib_qwen35.alignment`) expects.

    stock encoder: the loaded Anima model's own Qwen3-0.6B (WebUIHost.stock_encoder), else a
                   qwen_3_06b_base.safetensors picked by the user (lib_qwen35.model.qwen3.load_qwen3_encoder)
    4B encoder:    the accordion's encoder (the controller's holder: one copy in RAM), kept on the fit's
                   device for every batch (OnDevice: a generation in between may move it back to RAM)
"""

from __future__ import annotations

import inspect

from lib_qwen35.errors import Qwen35Error
from lib_qwen35.model.devices import numerics_tag
from lib_qwen35.model.qwen3 import load_qwen3_encoder

from . import a1111, file_locator, messages, selection
from . import placement as placement_mod
from .params import AUTOMATIC

STOCK_AUTOMATIC = "Automatic (the loaded Anima model's encoder)"


def stock_source(choice: str, extra_dirs=()):
    """The loaded model's stock encoder (WebUIHost.stock_encoder), or the path of a Qwen3-0.6B file to
    load; raises with the fix."""
    choice = choice or STOCK_AUTOMATIC
    files = file_locator.list_stock_encoders(extra_dirs)
    if choice == STOCK_AUTOMATIC:
        loaded = selection.current().stock_encoder(a1111.sd_model())
        if loaded is not None:
            return loaded
        path = file_locator.resolve(AUTOMATIC, files, file_locator.PREFERRED_STOCK)
        if path is None:
            raise messages.fit_tab_error(
                "no Anima model is loaded and no Qwen3-0.6B file was chosen, so there is no stock encoder to fit "
                "against. Fix: load an Anima checkpoint in the checkpoint picker, or put "
                f"{file_locator.PREFERRED_STOCK} into {_text_encoder_folder()}, press the refresh button and pick it "
                "under 'Stock encoder'.")
        return path
    path = file_locator.resolve(choice, files, file_locator.PREFERRED_STOCK)
    if path is None:
        where = "; ".join(file_locator.stock_search_dirs(extra_dirs))
        raise messages.fit_tab_error(
            f"stock encoder file '{choice}' not found. Searched: {where}. Fix: pick "
            f"'{STOCK_AUTOMATIC}' with an Anima model loaded, or a Qwen3-0.6B file from the list.")
    return path


def load_stock(source, placement, load_file):
    """`source` from stock_source: the loaded model's encoder as it is, or a file loaded with
    `load_file(path, placement)`."""
    if not isinstance(source, str):
        return source
    try:
        return load_file(source, placement)
    except Qwen35Error as error:
        raise messages.fit_tab_error(f"cannot use the stock encoder file {source}: {error} Fix: pick the Qwen3-0.6B "
                                     f"file Anima uses ({file_locator.PREFERRED_STOCK}).") from error


def load_stock_file(path: str, placement):
    return load_qwen3_encoder(path, device=placement.device, dtype=placement.dtype)


def load_4b(holder, path: str, settings, placement):
    """The accordion's 4B encoder from the controller's holder (one copy in RAM for generations and the tab)."""
    try:
        return holder.encoder(path, placement.dtype, placement.device.type == "cpu", settings.encoder_cache_size,
                              settings.embedding_cache_size)
    except Exception as error:
        raise messages.weights_invalid(path, error) from error


class OnDevice:
    """The 4B encoder kept on the compute device for every call (a generation in between may have moved
    it back to RAM), each call under the WebUI's generation lock. Exposes what `run_fit` reads: tokenize,
    encode_batch, identity, device (the compute device: part of the cache key), dtype, numerics (the arithmetic
    on that device: part of the key too), path, short_hash."""

    def __init__(self, encoder, placement, weights_path: str):
        self.encoder, self.placement, self.weights_path = encoder, placement, weights_path
        self.identity = getattr(encoder, "identity", None)
        self.path = getattr(encoder, "path", weights_path)
        self.dtype = getattr(encoder, "dtype", placement.dtype)
        self.device = placement.device
        self.numerics = numerics_tag(self.device, self.dtype) if hasattr(encoder, "numerics") else ""

    @property
    def short_hash(self):
        return getattr(self.encoder, "short_hash", None)

    def tokenize(self, text: str) -> list[int]:
        return self.encoder.tokenize(text)

    def encode_batch(self, batch, use_cache=None, max_batch=None):
        options = {}
        try:
            accepted = inspect.signature(self.encoder.encode_batch).parameters
        except (TypeError, ValueError):
            accepted = {}
        if use_cache is not None and "use_cache" in accepted:
            options["use_cache"] = use_cache
        if max_batch is not None and "max_batch" in accepted:
            options["max_batch"] = max_batch
        with selection.current().generation_lock():
            placement_mod.to_device(self.encoder, self.device, self.weights_path)
            return self.encoder.encode_batch(batch, **options)


def release(encoder, placement) -> None:
    """After the tab's work: the 4B weights back to RAM, unless they are to stay on the GPU. Under the
    generation lock: a generation may be using the same encoder."""
    if not placement.keep_resident:
        with selection.current().generation_lock():
            placement_mod.release(encoder)


def _text_encoder_folder() -> str:
    dirs = selection.current().text_encoder_dirs()
    return dirs[0] if dirs else "the WebUI's text-encoder folder"
