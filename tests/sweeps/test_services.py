"""sweeps.services: the helpers of `python -m sweeps.services` (the servers themselves are started
for real by tests/e2e/test_scale.py)."""

import socket
import subprocess
import sys

from sweeps.services import LOCALHOST, ephemeral_ports, free_port, postgres_missing


def test_free_port_is_a_port_this_machine_can_bind_on_loopback():
    port = free_port()
    with socket.socket() as s:
        s.bind((LOCALHOST, port))
    # below the source ports of outgoing connections: none can take it before a server binds it
    assert 1024 <= port < ephemeral_ports()[0]


def test_postgres_missing_says_what_to_install_or_nothing():
    text = postgres_missing()
    assert text == "" or "postgresql" in text.lower()


def test_the_command_documents_its_subcommands():
    out = subprocess.run([sys.executable, "-m", "sweeps.services", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "postgres" in out.stdout and "mlflow" in out.stdout
