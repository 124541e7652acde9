"""Which WebUI is running us: picked by importable modules (never a version string); an unrecognised one
is said loudly, in the console and the accordion, and nothing is changed."""

import pytest
import torch


def test_forge_neo_stand_ins_select_forge_neo(tmp_path):
    from stubs.forge_neo import installed

    from lib_qwen35.host import selection
    from lib_qwen35.host.forge_neo import ForgeNeoHost

    with installed():
        assert type(selection.current()) is ForgeNeoHost


def test_sdnext_stand_ins_select_sdnext(tmp_path):
    from stubs.sdnext import installed

    from lib_qwen35.host import selection
    from lib_qwen35.host.sdnext import SDNextHost

    with installed():
        host = selection.current()
        assert type(host) is SDNextHost and host.version() == "version unknown"
        import installer

        installer.version.update(updated="2026-07-23", commit="058a7f0", branch="master")
        assert host.version() == "2026-07-23 058a7f0, branch master"


def test_an_unknown_webui_is_said_loudly_and_changes_nothing(tmp_path, capsys, monkeypatch):
    from lib_qwen35.host import controller, preview, selection, status
    from lib_qwen35.host.params import GenerationParams
    from lib_qwen35.host.unknown import UnknownHost

    monkeypatch.setattr(selection, "_warned", False)
    selection.use(None)
    host = selection.current()   # neither WebUI's modules are importable here
    assert isinstance(host, UnknownHost)
    assert "this WebUI is not one this extension supports: neither Forge Neo nor SD.Next was recognised" in capsys.readouterr().out
    selection.current()
    assert "not one this extension supports" not in capsys.readouterr().out   # said once, not at every use

    class Model:
        pass

    class P:
        extra_generation_params: dict = {}

    import sys
    import types

    shared = types.SimpleNamespace(sd_model=Model(), opts=types.SimpleNamespace(data={}))
    monkeypatch.setitem(sys.modules, "modules", types.SimpleNamespace(shared=shared, __path__=[]))
    monkeypatch.setitem(sys.modules, "modules.shared", shared)
    ctl = controller.Controller()
    ctl.process(P(), True)
    assert "not one this extension supports" in status.line() and host.error_pending() is not None
    shown = preview.describe(ctl, GenerationParams(enabled=True).as_args())
    assert "not one this extension supports" in shown
    assert shown.startswith("On, but inactive:") and "will stop" not in shown   # it does not stop: nothing changes
    assert host.compute_device("cpu") == torch.device("cpu")
    ctl.postprocess(P())
    assert host.error_pending() is None
    selection.use(None)


@pytest.mark.parametrize("found", [(), ("A", "B")])
def test_unknown_webui_message_names_what_was_looked_for(found):
    from lib_qwen35.host import messages

    text = str(messages.unknown_webui(list(found)))
    assert "modules_forge and backend" in text and "modules.scripts_manager and modules.sd_hijack_te" in text
    assert ("more than one WebUI matched (A, B)" in text) == bool(found)
