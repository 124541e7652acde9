"""Reproducible infotexts, with the Forge stand-in as the host: each image records the alignment's and the
calibration's content hash beside their names (only when that stage is on); a stock infotext stays byte-identical;
a refit under the same name changes only the hash. A paste finds the file by name and checks it by hash, else
picks the file with the image's hash and says so in the status (and once in the console); a same-named copy is
offered and picked as NAME [HASH]; an infotext of an earlier version pastes as before."""

import os

import pytest
import torch

from fits import write_fitted_pair
from stubs.forge_neo.harness import forge_world, place_weights, write_alignment, write_calibration


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        place_weights(w)
        yield w


@pytest.fixture
def legacy_world(tmp_path):
    """The paste logic does not touch the text engine: one engine tree is enough."""
    from lib_qwen35.host import paste_lookup

    with forge_world(tmp_path, generation="legacy") as w:
        place_weights(w)
        paste_lookup.reset()
        yield w
        paste_lookup.reset()


def fitted(world, folder, name, seed, calibration=None):
    """A fit on the placed encoder under models/qwen35/<folder>/; returns (alignment hash, calibration hash)."""
    base = os.path.join(world.models_dir, "qwen35", folder)
    encoder = os.path.join(world.models_dir, "qwen35", "qwen35_4b.safetensors")
    return write_fitted_pair(os.path.join(base, name), os.path.join(base, calibration) if calibration else None,
                             encoder, seed=seed)


def pasted(world, infotext, tab="txt2img"):
    """Forge's paste of our nine fields: ({ARG name: value or 'skip'}, the status field's text or 'skip')."""
    from modules import infotext_utils

    from lib_qwen35.host.params import ARG_NAMES

    script = next(s for s in world.runners[tab].alwayson_scripts if type(s).__module__ == "qwen35_anima.py")
    updates = infotext_utils.paste(script.infotext_fields, infotext)
    values = [(u.get("value", "skip")) for u in updates]
    return dict(zip(ARG_NAMES, values[:8])), values[8]


def keys(info):
    from modules import infotext_utils

    return list(infotext_utils.parse_generation_parameters(info))


# ---- what an image records ----------------------------------------------------------------------------------

def test_hashes_follow_their_file_names_and_only_when_the_stage_is_on(world):
    from modules import infotext_utils

    from lib_qwen35.model.output_stage import Alignment, Calibration

    hashes = fitted(world, "mine", "rotation_mine.safetensors", 1, "calibration_mine.safetensors")
    on = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation_mine.safetensors",
                       use_calibration=True, calibration_file="calibration_mine.safetensors")
    order = [k for k in keys(on.info) if k.startswith("Qwen35")]
    assert order == ["Qwen35 TE", "Qwen35 TE file", "Qwen35 TE hash", "Qwen35 TE alignment", "Qwen35 TE alignment file",
                     "Qwen35 TE alignment hash", "Qwen35 TE calibration", "Qwen35 TE calibration hash", "Qwen35 TE scale"]
    params = infotext_utils.parse_generation_parameters(on.info)
    folder = os.path.join(world.models_dir, "qwen35", "mine")
    assert params["Qwen35 TE alignment hash"] == hashes[0] == Alignment.load(os.path.join(folder, "rotation_mine.safetensors")).content_hash
    assert params["Qwen35 TE calibration hash"] == hashes[1] == Calibration.load(os.path.join(folder, "calibration_mine.safetensors")).content_hash
    off = world.txt2img("1girl", "lowres", enabled=True, use_alignment=False, use_calibration=False)
    assert "hash: " + hashes[0] not in off.info and "alignment hash" not in off.info and "calibration hash" not in off.info
    calibrated_only = world.txt2img("1girl", "lowres", enabled=True, use_calibration=True, calibration_file="calibration_mine.safetensors")
    assert "alignment hash" not in calibrated_only.info and f"Qwen35 TE calibration hash: {hashes[1]}" in calibrated_only.info


def test_a_stock_infotext_is_byte_identical_to_one_without_the_extension(world):
    from modules import processing

    with_ours_off = world.txt2img("1girl, smile", "lowres")
    p = world.make_p("1girl, smile", "lowres")
    p.scripts = None                     # no script at all: what Forge writes without the extension
    without = processing.process_images(p)
    assert with_ours_off.info == without.info and "Qwen35" not in with_ours_off.info


def test_a_refit_under_the_same_name_changes_only_the_hash(world):
    path = os.path.join(world.models_dir, "qwen35", "rotation_shared.safetensors")
    write_alignment(path, seed=1)
    first = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation_shared.safetensors")
    write_alignment(path, seed=2)        # another fit, the same name
    second = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation_shared.safetensors")
    a, b = first.info.split(", "), second.info.split(", ")
    assert len(a) == len(b) and [(x, y) for x, y in zip(a, b) if x != y] == [
        (x, y) for x, y in zip(a, b) if x.startswith("Qwen35 TE alignment hash: ")]
    assert a != b and not torch.equal(first.c[0], second.c[0])


# ---- paste --------------------------------------------------------------------------------------------------

def made_with(world, name, folder="shared", seed=1, calibration=None):
    """An image made with a fit saved as models/qwen35/<folder>/<name>; returns (its infotext, its hashes)."""
    hashes = fitted(world, folder, name, seed, calibration)
    settings = {"enabled": True, "use_alignment": True, "alignment_file": name}
    if calibration:
        settings.update(use_calibration=True, calibration_file=calibration)
    return world.txt2img("1girl", "lowres", **settings).info, hashes


def test_paste_with_a_matching_hash_restores_the_name_and_says_nothing(legacy_world, capsys):
    info, _ = made_with(legacy_world, "rotation_shared.safetensors", calibration="calibration_shared.safetensors")
    values, status = pasted(legacy_world, info)
    assert values["alignment_file"] == "rotation_shared.safetensors"
    assert values["calibration_file"] == "calibration_shared.safetensors"
    assert status.startswith("On: the next generation encodes with") and "Pasted:" not in status
    assert "Pasted:" not in capsys.readouterr().out


def test_paste_picks_the_file_with_the_images_hash_when_the_name_holds_other_contents(legacy_world, capsys):
    world = legacy_world
    info, (wanted, _) = made_with(world, "rotation_shared.safetensors")
    shared = os.path.join(world.models_dir, "qwen35", "shared")
    os.makedirs(os.path.join(world.models_dir, "qwen35", "old"))
    os.replace(os.path.join(shared, "rotation_shared.safetensors"),
               os.path.join(world.models_dir, "qwen35", "old", "rotation_old.safetensors"))
    other, _ = fitted(world, "shared", "rotation_shared.safetensors", seed=2)      # a refit took its name
    values, status = pasted(world, info)
    assert values["alignment_file"] == "rotation_old.safetensors"
    assert (f"Pasted: the image was made with alignment file rotation_shared.safetensors ({wanted}); here that name "
            f"holds other contents ({other}), so rotation_old.safetensors, which has those contents, was picked by its hash.") in status
    assert capsys.readouterr().out.count("picked by its hash") == 1          # the API's infotext has no status box
    again = world.txt2img("1girl", "lowres", **values)
    assert f"Qwen35 TE alignment file: rotation_old.safetensors, Qwen35 TE alignment hash: {wanted}" in again.info


def test_paste_by_hash_when_the_name_is_not_here(legacy_world):
    world = legacy_world
    info, (_wanted, _) = made_with(world, "rotation_gone.safetensors")
    folder = os.path.join(world.models_dir, "qwen35", "shared")
    os.replace(os.path.join(folder, "rotation_gone.safetensors"), os.path.join(folder, "renamed.safetensors"))
    values, status = pasted(world, info)
    assert values["alignment_file"] == "renamed.safetensors"
    assert "that name is not here, so renamed.safetensors, which has those contents, was picked by its hash" in status


def test_paste_without_a_file_of_that_hash_says_the_image_will_differ_or_that_it_will_stop(legacy_world):
    world = legacy_world
    info, (wanted, _) = made_with(world, "rotation_shared.safetensors")
    other, _ = fitted(world, "shared", "rotation_shared.safetensors", seed=2)      # refit in place: same name only
    values, status = pasted(world, info)
    assert values["alignment_file"] == "rotation_shared.safetensors"
    assert "no alignment file here has those contents" in status and "the image will differ" in status
    assert wanted in status and other in status

    os.remove(os.path.join(world.models_dir, "qwen35", "shared", "rotation_shared.safetensors"))
    values, status = pasted(world, info)
    assert values["alignment_file"] == "rotation_shared.safetensors"
    assert status.startswith("On, but the next generation will stop:") and "not found" in status
    assert "which is not here (no file has that name or those contents): the next generation will stop" in status


def test_an_infotext_of_an_earlier_version_pastes_as_before(legacy_world):
    world = legacy_world
    write_alignment(os.path.join(world.models_dir, "qwen35", "fit, v2.safetensors"), seed=1)
    write_calibration(os.path.join(world.models_dir, "qwen35", "calib.safetensors"), seed=2)
    old = ("1girl\nNegative prompt: lowres\nSteps: 2, CFG scale: 4.0, Size: 64x64, Qwen35 TE: on, Qwen35 TE file: "
           "qwen35_4b.safetensors, Qwen35 TE hash: 0123456789, Qwen35 TE alignment: 0.65, Qwen35 TE alignment file: "
           '"fit, v2.safetensors", Qwen35 TE calibration: calib.safetensors, Qwen35 TE scale: 1.1')
    values, status = pasted(world, old)
    assert values == {"enabled": True, "encoder_file": "qwen35_4b.safetensors", "use_alignment": True, "alignment_strength": 0.65,
                          "alignment_file": "fit, v2.safetensors", "use_calibration": True, "calibration_file": "calib.safetensors",
                          "output_scale": 1.1}
    assert "Pasted: alignment file fit, v2.safetensors picked by name; the infotext has no hash to check" in status


def test_a_stock_infotext_pastes_as_off_and_records_no_note(legacy_world):
    from lib_qwen35.host import paste_lookup

    world = legacy_world
    info, _ = made_with(world, "rotation_shared.safetensors")
    os.remove(os.path.join(world.models_dir, "qwen35", "shared", "rotation_shared.safetensors"))
    pasted(world, info)                                         # leaves a "missing" note
    values, status = pasted(world, world.txt2img("1girl", "lowres").info)
    assert values["enabled"] is False and status.startswith("Off:") and "Pasted" not in status
    assert paste_lookup.notes_for({"alignment": "rotation_shared.safetensors"}) == []


def test_same_named_copies_are_offered_and_picked_by_hash(legacy_world):
    world = legacy_world
    a, _ = fitted(world, "a", "rotation.safetensors", seed=1)
    b, _ = fitted(world, "b", "rotation.safetensors", seed=2)
    fitted(world, "c", "rotation.safetensors", seed=1)                  # identical to a: adds nothing
    assert world.controller.alignment_choices() == ["Automatic", "rotation.safetensors", f"rotation.safetensors [{b}]"]
    made = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file=f"rotation.safetensors [{b}]")
    assert f"Qwen35 TE alignment file: rotation.safetensors, Qwen35 TE alignment hash: {b}" in made.info
    values, status = pasted(world, made.info)
    assert values["alignment_file"] == f"rotation.safetensors [{b}]" and "Pasted" not in status   # a match, by name
    plain = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file="rotation.safetensors")
    assert f"alignment hash: {a}" in plain.info and not torch.equal(plain.c[0], made.c[0])
    os.remove(os.path.join(world.models_dir, "qwen35", "b", "rotation.safetensors"))
    os.makedirs(os.path.join(world.models_dir, "qwen35", "moved"))
    fitted(world, "moved", "rotation_b.safetensors", seed=2)           # b moved: its NAME [HASH] still finds it
    again = world.txt2img("1girl", "lowres", enabled=True, use_alignment=True, alignment_file=f"rotation.safetensors [{b}]")
    assert f"Qwen35 TE alignment file: rotation_b.safetensors, Qwen35 TE alignment hash: {b}" in again.info


def test_the_status_keeps_the_note_while_the_picker_holds_the_pasted_file(legacy_world):
    from lib_qwen35.host.params import GenerationParams

    world = legacy_world
    info, _ = made_with(world, "rotation_gone.safetensors")
    folder = os.path.join(world.models_dir, "qwen35", "shared")
    os.replace(os.path.join(folder, "rotation_gone.safetensors"), os.path.join(folder, "renamed.safetensors"))
    fitted(world, "other", "rotation_other.safetensors", seed=5)
    values, _ = pasted(world, info)
    args = GenerationParams.from_mapping(values).as_args()
    assert "picked by its hash" in world.controller.status_text(*args)          # the controls' change event
    values["alignment_file"] = "rotation_other.safetensors"                      # the user picks another file
    assert "Pasted" not in world.controller.status_text(*GenerationParams.from_mapping(values).as_args())


def test_paste_field_names_carry_the_nine_fields(world):
    from lib_qwen35.host import controller, infotext

    script = world.script
    targets = [target for _, target in script.infotext_fields]
    assert script.paste_field_names == targets and len(targets) == 9      # Forge matches "Send to" fields by these
    assert targets[:8] == list(infotext.PASTE_FUNCTIONS.values()) and targets[8] is controller.paste_status
    assert script.infotext_fields[8][0].label == "Status"
