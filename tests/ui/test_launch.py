"""What ``selfinstruct playground`` checks before it serves the page."""

from __future__ import annotations

import sys

import pytest

from selfinstruct.errors import UserError
from selfinstruct.ui import launch


def test_a_lan_host_is_warned_about(playground, monkeypatch, capsys):
    pytest.importorskip("gradio", reason="pip install 'selfinstruct[ui]'")
    served = []
    monkeypatch.setattr("selfinstruct.ui.page.serve",
                        lambda playground, host, port: served.append((host, port)))
    launch.start(playground.settings, "0.0.0.0", 7999)
    assert served == [("0.0.0.0", 7999)]
    assert "warning: --host 0.0.0.0 serves the playground to every machine" in (
        capsys.readouterr().err)
    launch.start(playground.settings)
    assert served[-1] == ("127.0.0.1", None)
    assert "warning" not in capsys.readouterr().err


def test_without_gradio_the_command_says_how_to_install_it(playground, monkeypatch):
    monkeypatch.setitem(sys.modules, "selfinstruct.ui.page", None)
    with pytest.raises(UserError, match=r"pip install 'selfinstruct\[ui\]'"):
        launch.start(playground.settings)


@pytest.mark.parametrize(("host", "local"), [("127.0.0.1", True), ("localhost", True),
                                             ("::1", True), ("0.0.0.0", False),
                                             ("192.168.1.5", False)])
def test_which_hosts_stay_on_this_machine(host, local):
    assert launch.is_loopback(host) is local
