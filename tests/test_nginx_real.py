"""The planned edits against the real nginx binary: a tree on disk with a private prefix and real
certificates passes `nginx -t` before and after, and, served on loopback, the edited tree refuses
old TLS, selects h2 through ALPN and carries a WebSocket handshake that failed before."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from remediate.policy import model as policy_model
from remediate.providers.nginx import edit, rules
from remediate.providers.nginx.config import NginxConfigError, parse_tree
from remediate.providers.nginx.discover import endpoint_of
from remediate.providers.nginx.host import HostConfig
from remediate.sandbox.certs import self_signed
from remediate.verify import Target, connect, websocket
from tests.loopback import free_port, wait_for_port, websocket_backend

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
VERSION = "1.22.1"

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="needs the nginx binary (Debian package nginx)"
)

POLICY = policy_model().model_validate(
    {"tls": {"minimum": "1.2"}, "http2": True, "websocket": {"locations": ["/ws/"]}, "nginx": {}}
)


def write_tree(prefix: Path, port: int, backend: int) -> dict[str, str]:
    """A Debian-style tree: tabs in the main file, sites in conf.d, comments and quoting."""
    conf = prefix / "conf"
    (conf / "conf.d").mkdir(parents=True)
    (prefix / "logs").mkdir()
    (prefix / "tmp").mkdir()
    self_signed(conf, "localhost", "localhost")
    user = "user root;\n" if os.geteuid() == 0 else ""
    files = {
        conf / "nginx.conf": f"""{user}worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log;

events {{
\tworker_connections 64;
}}

http {{
\t##
\t# SSL Settings
\t##

\tssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
\tssl_ciphers "DEFAULT:@SECLEVEL=0";
\tssl_prefer_server_ciphers on;

\taccess_log logs/access.log;
\tclient_body_temp_path tmp/body;
\tproxy_temp_path tmp/proxy;
\tfastcgi_temp_path tmp/fastcgi;
\tuwsgi_temp_path tmp/uwsgi;
\tscgi_temp_path tmp/scgi;

\tinclude conf.d/*.conf;
}}
""",
        conf / "conf.d" / "shop.conf": f"""# The shop: not the default server of its socket.
server {{
    listen 127.0.0.1:{port} ssl;
    server_name shop.example;
    ssl_certificate     localhost.crt;
    ssl_certificate_key localhost.key;

    location = / {{ return 200 "shop\\n"; }}
}}
""",
        conf / "conf.d" / "api.conf": f"""# The API answers clients that send no SNI.
server {{
    listen 127.0.0.1:{port} ssl default_server;
    server_name api.example;
    ssl_certificate     'localhost.crt';
    ssl_certificate_key localhost.key;
    proxy_set_header Host $host;

    location /ws/ {{
        proxy_pass http://127.0.0.1:{backend};   # the chat backend
    }}
}}
""",
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return {str(path): text for path, text in files.items()}


def nginx_t(prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "conf" / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def serving(prefix: Path, port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", "conf/nginx.conf", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def handshake(port: int, version: ssl.TLSVersion) -> tuple[str | None, str | None]:
    """(negotiated TLS version, ALPN protocol), or (None, alert) when the server refuses."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 on purpose
        context.minimum_version = context.maximum_version = version
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                return tls.version(), tls.selected_alpn_protocol()
        except ssl.SSLError as exc:
            return None, exc.reason


def websocket_echo(port: int) -> str:
    target = Target("127.0.0.1", port)
    with websocket(target, "/ws/", connect(target), timeout=5) as ws:
        ws.send_text("ping")
        return ws.receive(timeout=5).data.decode()


def test_planned_edits_pass_nginx_t_and_fix_what_a_client_sees(tmp_path: Path) -> None:
    port = free_port()
    prefix = tmp_path / "nginx"
    with websocket_backend() as backend:
        files = write_tree(prefix, port, backend)
        main = str(prefix / "conf" / "nginx.conf")
        assert nginx_t(prefix).returncode == 0, nginx_t(prefix).stderr

        with serving(prefix, port):
            assert handshake(port, ssl.TLSVersion.TLSv1_1) == ("TLSv1.1", "http/1.1")
            with pytest.raises(InvalidStatus):
                websocket_echo(port)

        found = rules.review(parse_tree(files, main), POLICY, VERSION)
        new = edit.apply(files, [item.edit for item in found.fixes])
        api = str(prefix / "conf" / "conf.d" / "api.conf")
        assert sorted(new) == sorted([main, api])  # the shop is not its socket's default server
        for path, text in new.items():
            Path(path).write_text(text, encoding="utf-8")

        checked = nginx_t(prefix)
        assert checked.returncode == 0, checked.stderr
        assert "syntax is ok" in checked.stderr
        with serving(prefix, port):
            assert handshake(port, ssl.TLSVersion.TLSv1_1) == (None, "TLSV1_ALERT_PROTOCOL_VERSION")
            assert handshake(port, ssl.TLSVersion.TLSv1_2) == ("TLSv1.2", "h2")
            assert handshake(port, ssl.TLSVersion.TLSv1_3) == ("TLSv1.3", "h2")
            assert websocket_echo(port) == "ping"

        on_disk = {path: Path(path).read_text(encoding="utf-8") for path in files}
        assert rules.review(parse_tree(on_disk, main), POLICY, VERSION).fixes == []


def test_the_edits_keep_everything_else_byte_for_byte(tmp_path: Path) -> None:
    files = write_tree(tmp_path / "nginx", 8443, 9000)
    main = str(tmp_path / "nginx" / "conf" / "nginx.conf")
    found = rules.review(parse_tree(files, main), POLICY, VERSION)
    new = edit.apply(files, [item.edit for item in found.fixes])
    api = str(tmp_path / "nginx" / "conf" / "conf.d" / "api.conf")
    removed = [line for line in files[api].splitlines() if line not in new[api].splitlines()]
    added = [line for line in new[api].splitlines() if line not in files[api].splitlines()]
    assert removed == ["    listen 127.0.0.1:8443 ssl default_server;"]
    assert added == [
        "    listen 127.0.0.1:8443 ssl http2 default_server;",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Host $host;",
        "        proxy_set_header Upgrade $http_upgrade;",
        "        proxy_set_header Connection $connection_upgrade;",
    ]
    assert "    ssl_certificate     'localhost.crt';\n" in new[api]
    assert "proxy_pass http://127.0.0.1:9000;   # the chat backend\n" in new[api]
    assert new[main].count("\n") == files[main].count("\n") + 5
    assert "\t# SSL Settings\n" in new[main]


def test_an_unparseable_file_is_one_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    files = write_tree(tmp_path / "nginx", 8443, 9000)
    broken = str(tmp_path / "nginx" / "conf" / "conf.d" / "shop.conf")
    files[broken] = files[broken].replace('"shop\\n"; }', '"shop\\n"; }}')
    Path(broken).write_text(files[broken], encoding="utf-8")
    before = {path: Path(path).read_bytes() for path in files}
    host = HostConfig(
        host="web1",
        version=VERSION,
        conf_path=str(tmp_path / "nginx" / "conf" / "nginx.conf"),
        prefix=str(tmp_path / "nginx"),
        binary=NGINX,
        reload_command=None,
        files=files,
    )
    with pytest.raises(NginxConfigError) as caught:
        endpoint_of(host, POLICY)
    assert str(caught.value) == f'{broken}:9: cannot parse nginx config: unexpected "}}"'
    assert f"{broken}:9" in nginx_t(tmp_path / "nginx").stderr  # the line nginx itself names
    assert {path: Path(path).read_bytes() for path in files} == before


def test_inline_and_inserted_edits_of_every_kind_pass_nginx_t(tmp_path: Path) -> None:
    prefix = tmp_path / "nginx"
    conf = prefix / "conf"
    (conf / "sites").mkdir(parents=True)
    (prefix / "logs").mkdir()
    self_signed(conf, "localhost", "localhost")
    user = "user root;\n" if os.geteuid() == 0 else ""
    texts = {
        conf / "nginx.conf": (
            f"{user}pid logs/nginx.pid;\nerror_log logs/error.log;\nevents {{}}\n"
            "http { access_log off; map $http_upgrade $up_conn { default upgrade; '' close; }\n"
            "  ssl_certificate localhost.crt; ssl_certificate_key localhost.key;\n"
            "  include sites/*.conf; }\n"
        ),
        conf / "sites" / "one.conf": (
            "server { listen 127.0.0.1:8443 ssl; server_name one;\n"
            "  proxy_set_header Host $host;\n"
            "  location /a/ { proxy_pass http://127.0.0.1:9; }\n"
            "  location /b/ { proxy_pass http://127.0.0.1:9; proxy_set_header X-B 1; }\n"
            "  location /c/ {\n"
            "    proxy_pass http://127.0.0.1:9;\n"
            "    proxy_http_version 1.0;\n"
            '    proxy_set_header Connection "";\n'
            "  }\n"
            "}\n"
            "server { listen 127.0.0.1:8443 default_server; server_name two; return 444; }\n"
        ),
    }
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
    files = {str(path): text for path, text in texts.items()}
    main = str(conf / "nginx.conf")
    assert nginx_t(prefix).returncode == 0, nginx_t(prefix).stderr
    policy = policy_model().model_validate({"nginx": {}, "websocket": {"locations": ["*"]}})

    found = rules.review(parse_tree(files, main), policy, VERSION)
    new = edit.apply(files, [item.edit for item in found.fixes])
    for path, text in new.items():
        Path(path).write_text(text, encoding="utf-8")

    checked = nginx_t(prefix)
    assert checked.returncode == 0, checked.stderr
    site = new[str(conf / "sites" / "one.conf")]
    assert "proxy_set_header Connection $up_conn;" in site  # the existing map, reused
    # /c/ sends `Connection ""` to keep upstream connections alive: it gets the keepalive map.
    assert "    proxy_set_header Connection $connection_upgrade_keepalive;\n" in site
    assert new[main].count("map $http_upgrade") == 2
    assert "map $http_upgrade $connection_upgrade_keepalive {" in new[main]
    assert "listen 127.0.0.1:8443 default_server http2;" in site  # the catch-all's listen
    on_disk = {path: Path(path).read_text(encoding="utf-8") for path in files}
    assert rules.review(parse_tree(on_disk, main), policy, VERSION).fixes == []
