"""Fixtures for the dataset-builder tests: the network is off for the whole session."""
import socket

import pytest


class NetworkDisabled(OSError):
    """Raised by any attempt to open a network connection during the dataset tests."""


def _refusing(original):
    def connect(sock, *args, **kwargs):
        if sock.family == getattr(socket, "AF_UNIX", None):  # local IPC is not "the network"
            return original(sock, *args, **kwargs)
        raise NetworkDisabled(f"network access is disabled in tests/datasets (tried {args!r})")

    return connect


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Every dataset test runs with `socket.socket.connect` / `connect_ex` refusing inet sockets."""
    with pytest.MonkeyPatch.context() as mp:
        for method in ("connect", "connect_ex"):
            mp.setattr(socket.socket, method, _refusing(getattr(socket.socket, method)))
        yield
