"""The interface each WebUI package implements, and what `locate()` returns.

The shared code (controller, placement, file pickers, preview, the alignment tab) asks the running WebUI's
`WebUIHost` (selection.current()) for everything that differs between WebUIs and never branches on which
WebUI it is. A WebUI
package (forge_neo/, sdnext/) subclasses WebUIHost, overrides every method that raises NotImplementedError
(the others default to what all A1111-family WebUIs share), and is listed in selection.hosts(). Its methods
import the WebUI lazily, so they can be unit-tested with stand-ins.

The seam: each WebUI turns a prompt into the Qwen3-0.6B hidden states that Anima's LLM adapter reads at
one place (Forge Neo: an engine method; SD.Next: the pipeline's `_encode_prompt`). The WebUI package
patches that place once (`install`) so that it asks `active_state` whether a run is armed: with none it
calls exactly what was there before, so the extension off is stock, bit for bit.
"""

from __future__ import annotations

import dataclasses

import torch

from . import a1111, gradio_parts

OFF_SIGNATURE = ("off",)   # sync_caches' signature while our encoder is off: the caches hold stock conditioning


@dataclasses.dataclass(frozen=True)
class Located:
    """Where the loaded model's Anima text seam is. A WebUI package subclasses it with its own fields.

    kind:
        "anima"        a seam this extension knows: install() it
        "unsupported"  an Anima model whose seam no adapter knows: stop with a message, never stock
        "not_anima"    another model (SDXL, Flux, ...): nothing to do
        "no_model"
    """

    kind: str
    model: str = ""   # a short description of the loaded model, for status lines and messages

    @property
    def is_anima(self) -> bool:
        return self.kind == "anima"

    def seam_description(self) -> str:
        """Which seam is hooked, for the status line ("" when none)."""
        return ""


class WebUIHost:
    name = ""   # the WebUI's name as users know it: "Forge Neo", "SD.Next"
    stops_generations = True   # arm_error stops the generation (False: it can only be reported, as in UnknownHost)

    @classmethod
    def detect(cls) -> bool:
        """Is this WebUI running us? Decided by what is importable and what its modules offer, never by a
        version string. Must not raise and must not import heavy modules (no torch work, no model load)."""
        raise NotImplementedError

    def version(self) -> str:
        """The WebUI's version for messages ("neo 2.29.2", "sd.next 2026-07-23 058a7f0"), "unknown" if unreadable."""
        raise NotImplementedError

    # ---- the loaded model and its seam ------------------------------------------------------------

    def locate(self, sd_model) -> Located:
        """Is `sd_model` Anima, and where is its text seam? Never raises (an odd object is "not_anima")."""
        raise NotImplementedError

    def is_placeholder(self, sd_model) -> bool:
        """True for the WebUI's stand-in object before the first model load (treated as "no model")."""
        return False

    def install(self, located: Located) -> bool:
        """Patch the seam of an "anima" `located` so it routes through active_state; idempotent. With no
        run armed the patched seam must call exactly what was there before (stock, or another
        extension's patch). True when newly installed."""
        raise NotImplementedError

    def restore_all(self) -> int:
        """Undo every patch this host installed (script unload / reload); returns how many."""
        raise NotImplementedError

    def unsupported(self, located: Located) -> Exception:
        """The error for an Anima model whose seam no adapter knows: it names the class, the method (or
        what was found instead), the WebUI version and what is supported (messages.unsupported_seam)."""
        raise NotImplementedError

    # ---- one generation -----------------------------------------------------------------------------

    def sync_caches(self, p, signature: tuple) -> None:
        """Called once per generation with the signature of what our encoder will produce (("off",) when
        off). The WebUI's conditioning caches must never serve a conditioning made under another
        signature: empty them when it changed, and keep them from serving stale results while armed."""
        raise NotImplementedError

    def arm_error(self, sd_model, error: BaseException) -> None:
        """Stop this generation with `error`, shown in the WebUI's error box and the API's reply. WebUIs
        catch and log exceptions raised in Script hooks and generate anyway, so the error must be raised
        later, where the WebUI cannot swallow it (before any image is made)."""
        raise NotImplementedError

    def follow_model(self, sd_model) -> None:
        """The WebUI may have reloaded the model since `arm_error`: make the armed error follow it."""

    def error_pending(self) -> BaseException | None:
        """The armed error, or None."""
        raise NotImplementedError

    def disarm_error(self) -> None:
        """Forget the armed error (a generation ended, or the next one starts)."""
        raise NotImplementedError

    # ---- device and memory --------------------------------------------------------------------------

    def compute_device(self, choice: str) -> torch.device:
        """The device for the setting "auto" | "gpu" | "cpu": "auto" is where the WebUI runs its own text
        encoder; "gpu" the WebUI's GPU; a CPU-only WebUI gives the CPU for every choice."""
        raise NotImplementedError

    def default_dtype(self, device: torch.device) -> torch.dtype | None:
        """The compute dtype for the setting "auto" on `device` (the WebUI's own precision), or None to
        use placement's default (fp32 on the CPU, bf16/fp16 on a GPU)."""
        return None

    def make_room(self, device: torch.device, nbytes: int) -> None:
        """Before the 4B weights move to `device`: have the WebUI offload its own models as far as its
        offload mode allows, so `nbytes` fit. Must not break the WebUI's own placement."""

    def empty_cache(self) -> None:
        """After the weights went back to RAM: give the freed device memory back (the WebUI's own gc)."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- files --------------------------------------------------------------------------------------

    def models_path(self) -> str:
        """The WebUI's models root (modules.paths.models_path in every A1111-family WebUI); models/qwen35/
        lives under it."""
        return a1111.models_path()

    def text_encoder_dirs(self) -> list[str]:
        """The WebUI's text-encoder folders (searched for Qwen3.5 weights by header, and for the stock
        Qwen3-0.6B file of the alignment tab)."""
        raise NotImplementedError

    # ---- the alignment tab --------------------------------------------------------------------------

    def stock_encoder(self, sd_model):
        """The loaded Anima model's own Qwen3-0.6B encoder behind the interface the alignment fit
        (`lib_qwen35.alignment`) expects (tokenize, encode_batch, identity, device, dtype, path, short_hash, and
        generation_text(prompt): the text a generation would hand the 4B encoder), computed through the
        stock seam, never our patch. None when the model is not Anima; raises (unsupported) when it is
        Anima with an unknown seam."""
        raise NotImplementedError

    def generation_lock(self):
        """A context manager held while an encoder runs outside a generation (the alignment tab), so it
        never interleaves with one. Not re-entrant."""
        return a1111.generation_lock()

    # ---- UI pieces that differ ----------------------------------------------------------------------

    def enable_accordion(self, value: bool, label: str, elem_id: str):
        """A context manager that opens the extension's accordion and yields the component whose value is
        "enabled" (Forge Neo: InputAccordion, the checkbox in its header; by default a checkbox inside)."""
        return gradio_parts.checkbox_accordion(value, label, elem_id)

    def paste_field(self, component, paste):
        """The entry for Script.infotext_fields that restores `component` from a pasted infotext with
        `paste(params) -> value | None` (None: leave the control unchanged). By default a function that
        returns gradio updates, which every gradio version the WebUIs ship accepts."""
        return gradio_parts.update_paste_field(component, paste)
