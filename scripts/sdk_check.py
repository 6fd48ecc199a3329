"""The sandbox through Lark's official Python SDK (lark-oapi) as the client.

Usage: sdk_check.py BASE_URL. Run by scripts/sdk_check.sh, which starts the sandbox.
Every call must succeed (code 0) and carry a log id; the download must keep its name.
One-click registration (`lark_oapi.register_app`) must complete against the sandbox's
accounts endpoints for a Feishu and a Lark tenant, and its credentials must work.
The long connection (`lark_oapi.ws.Client`) must connect and receive, and ack, an
`im.message.receive_v1` posted through `/_sandbox/incoming`.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import lark_oapi as lark
from lark_oapi.api.contact.v3 import (
    BatchGetIdUserRequest,
    BatchGetIdUserRequestBody,
    ChildrenDepartmentRequest,
    FindByDepartmentUserRequest,
    GetUserRequest,
)
from lark_oapi.api.im.v1 import (
    CreateChatRequest,
    CreateChatRequestBody,
    CreateMessageReactionRequest,
    CreateMessageReactionRequestBody,
    CreateMessageRequest,
    CreateMessageRequestBody,
    Emoji,
    GetChatRequest,
    GetMessageRequest,
    GetMessageResourceRequest,
    ListMessageRequest,
)

# The default seed (src/sandbox/default_seed.json).
APP_ID = "cli_a5f2c8e91b3d4007"
APP_SECRET = "sbx_7Qm2Vn9Lr4Tx8Kp1Wd6Hs3Jc5Fb0Ga"
ZHANG_WEI = "ou_7d82ab6889beb45bb7911ba8216f1a9e"
ZHANG_WEI_EMAIL = "zhang.wei@northwind.example"
BAI_XUE = "ou_1fdec493aac318f451a02ea6b93b3866"
RND_DEPT = "od-57891d17a4df767674f2906dc08918aa"
PERCEPTION_DEPT = "od-8667b797aafb4516b58c3778a7b60cfc"
MOTION_DEPT = "od-6f02dda7a6dc4f66c082a96cae5f88f6"
ALL_HANDS_CHAT = "oc_565504f375c752f3e721d59fac70afd9"
HR_PRIVATE_CHAT = "oc_e71b5d3c2b56c8e28e8a4306d67d8577"
HANDBOOK_MSG = "om_a3267e59f62217af7be9703b77ac624b"
HANDBOOK_KEY = "file_v3_00a87c967e20627217023993a7"
HANDBOOK_NAME = "Northwind-Employee-Handbook-2025.pdf"

failures = []


def check(name, resp, cond=True, detail=""):
    """Records one call: code 0, a log id from the X-Tt-Logid header, and `cond`."""
    problems = []
    if resp.code != 0:
        problems.append(f"code {resp.code} {resp.msg!r}")
    if resp.get_log_id() is None:
        problems.append("no log id (X-Tt-Logid header not found)")
    if not cond:
        problems.append(detail or "unexpected data")
    if problems:
        failures.append(name)
        print(f"sdk {name}: FAILED: {'; '.join(problems)}")
    else:
        print(f"sdk {name}: ok")
    return resp


def main(base_url):
    client = (
        lark.Client.builder()
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .domain(base_url)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )
    contact = client.contact.v3
    im = client.im.v1

    # ---- contact ----
    r = contact.user.get(GetUserRequest.builder().user_id(ZHANG_WEI).build())
    check("contact get user", r, r.success() and r.data.user.open_id == ZHANG_WEI)

    r = contact.user.batch_get_id(
        BatchGetIdUserRequest.builder()
        .request_body(BatchGetIdUserRequestBody.builder().emails([ZHANG_WEI_EMAIL]).build())
        .build()
    )
    found = [u.user_id for u in (r.data.user_list or [])] if r.success() else []
    check("contact batch_get_id by email", r, found == [ZHANG_WEI], f"got {found}")

    # fetch_child=True goes on the wire as "True".
    r = contact.department.children(
        ChildrenDepartmentRequest.builder().department_id(RND_DEPT).fetch_child(True).build()
    )
    ids = {d.open_department_id for d in (r.data.items or [])} if r.success() else set()
    check(
        "contact departments children fetch_child=True",
        r,
        {PERCEPTION_DEPT, MOTION_DEPT} <= ids,
        f"grandchildren missing from {sorted(ids)}",
    )

    r = contact.user.find_by_department(
        FindByDepartmentUserRequest.builder().department_id(PERCEPTION_DEPT).build()
    )
    ids = [u.open_id for u in (r.data.items or [])] if r.success() else []
    check("contact find_by_department", r, ZHANG_WEI in ids, f"got {ids}")

    # ---- im ----
    r = im.message.create(
        CreateMessageRequest.builder()
        .receive_id_type("chat_id")
        .request_body(
            CreateMessageRequestBody.builder()
            .receive_id(ALL_HANDS_CHAT)
            .msg_type("text")
            .content('{"text":"hello from lark-oapi"}')
            .uuid(str(uuid.uuid4()))
            .build()
        )
        .build()
    )
    check("im create message", r, r.success() and r.data.message_id.startswith("om_"))
    sent = r.data.message_id if r.success() else ""

    r = im.message.list(
        ListMessageRequest.builder()
        .container_id_type("chat")
        .container_id(ALL_HANDS_CHAT)
        .sort_type("ByCreateTimeDesc")
        .page_size(20)
        .build()
    )
    ids = [m.message_id for m in (r.data.items or [])] if r.success() else []
    check("im list messages", r, sent in ids, f"{sent} not in the newest page")

    r = im.message.get(GetMessageRequest.builder().message_id(sent).build())
    check("im get message", r, r.success() and r.data.items[0].message_id == sent)

    r = im.message_reaction.create(
        CreateMessageReactionRequest.builder()
        .message_id(sent)
        .request_body(
            CreateMessageReactionRequestBody.builder()
            .reaction_type(Emoji.builder().emoji_type("THUMBSUP").build())
            .build()
        )
        .build()
    )
    check("im reaction create", r, r.success() and bool(r.data.reaction_id))

    r = im.chat.get(GetChatRequest.builder().chat_id(ALL_HANDS_CHAT).build())
    check("im chat get", r, r.success() and bool(r.data.name))

    # set_bot_manager=True goes on the wire as "True".
    r = im.chat.create(
        CreateChatRequest.builder()
        .set_bot_manager(True)
        .request_body(
            CreateChatRequestBody.builder()
            .name("lark-oapi check")
            .owner_id(ZHANG_WEI)
            .user_id_list([BAI_XUE])
            .build()
        )
        .build()
    )
    check("im chat create set_bot_manager=True", r, r.success() and r.data.chat_id.startswith("oc_"))
    if r.success():
        g = im.chat.get(GetChatRequest.builder().chat_id(r.data.chat_id).build())
        check(
            "im chat get (bot is manager)",
            g,
            g.success() and g.data.bot_manager_id_list == [APP_ID],
            f"bot_manager_id_list {g.data.bot_manager_id_list if g.success() else None}",
        )

    r = im.message_resource.get(
        GetMessageResourceRequest.builder()
        .message_id(HANDBOOK_MSG)
        .file_key(HANDBOOK_KEY)
        .type("file")
        .build()
    )
    body = r.file.read() if r.file is not None else b""
    check(
        "im message resource download",
        r,
        r.file_name == HANDBOOK_NAME and body.startswith(b"%PDF-"),
        f"file_name {r.file_name!r}, {len(body)} bytes",
    )

    # An error answer keeps its code: the SDK parses the body only when it sees Content-Type.
    r = im.chat.get(GetChatRequest.builder().chat_id(HR_PRIVATE_CHAT + "x").build())
    if r.code in (0, None) or r.get_log_id() is None:
        failures.append("im chat get (error)")
        print(f"sdk im chat get (error): FAILED: code {r.code}, log id {r.get_log_id()}")
    else:
        print(f"sdk im chat get (error): ok (code {r.code})")

    for brand in ("feishu", "lark"):
        check_registration(base_url, brand)

    check_long_connection(base_url)

    if failures:
        print(f"sdk: {len(failures)} FAILED")
        return 1
    print("sdk: all ok")
    return 0


def control(base_url, method, path, body=None):
    """The sandbox's control path (`/_sandbox/...`): plain JSON."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base_url + "/_sandbox" + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def check_registration(base_url, brand):
    """`register_app` with the accounts hosts at BASE_URL (Feishu) and BASE_URL/lark (Lark):
    the QR callback "scans" the verification URL (the page records the requested scopes),
    the sandbox approves on the second poll, and the returned credentials work."""
    from lark_oapi.scene.registration import register_app

    name = f"register_app ({brand})"
    control(base_url, "PATCH", "/options", {
        "registration_brand": brand,
        "registration_outcome": "approve",
        "registration_approve_after_polls": 2,
        "registration_slow_down_polls": 0,
    })
    scanned = []
    statuses = []

    def on_qr_code(info):
        with urllib.request.urlopen(info["url"]) as r:
            scanned.append(r.read().decode("utf-8"))

    problems = []
    try:
        result = register_app(
            on_qr_code,
            on_status_change=lambda s: statuses.append(s["status"]),
            source="sdk-check",
            domain=base_url,
            lark_domain=base_url + "/lark",
            app_preset={"name": "{user}'s sdk check", "desc": "lark-mcp-server sdk_check"},
            addons={"scopes": {"tenant": ["contact:contact.base:readonly"]}},
        )
    except Exception as e:  # the SDK's RegisterAppError family and transport errors
        failures.append(name)
        print(f"sdk {name}: FAILED: {type(e).__name__}: {e}")
        return
    finally:
        control(base_url, "PATCH", "/options", {"registration_brand": "feishu"})
    app_id = result.get("client_id", "")
    secret = result.get("client_secret", "")
    if not app_id.startswith("cli_") or not secret:
        problems.append(f"credentials missing: {result.get('client_id')!r}")
    if (result.get("user_info") or {}).get("tenant_brand") != brand:
        problems.append(f"user_info {result.get('user_info')}")
    if brand == "lark" and "domain_switched" not in statuses:
        problems.append(f"no domain switch: {statuses}")
    if not scanned or "contact:contact.base:readonly" not in scanned[0]:
        problems.append("the verification page did not show the requested scope")
    apps = {a["app_id"]: a for a in control(base_url, "GET", "/apps")}
    scopes = [s["scope"] for s in apps.get(app_id, {}).get("scopes", [])]
    if scopes != ["contact:contact.base:readonly"]:
        problems.append(f"granted scopes {scopes}")
    if problems:
        failures.append(name)
        print(f"sdk {name}: FAILED: {'; '.join(problems)}")
    else:
        print(f"sdk {name}: ok ({app_id})")

    # The new credentials get a tenant_access_token…
    req = urllib.request.Request(
        base_url + "/open-apis/auth/v3/tenant_access_token/internal",
        data=json.dumps({"app_id": app_id, "app_secret": secret}).encode(),
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    with urllib.request.urlopen(req) as r:
        answer = json.loads(r.read())
    token = answer.get("tenant_access_token", "")
    if answer.get("code") != 0 or not token.startswith("t-"):
        failures.append(f"{name} tenant_access_token")
        print(f"sdk {name} tenant_access_token: FAILED: code {answer.get('code')}")
    else:
        print(f"sdk {name} tenant_access_token: ok")
    # …and, through the SDK's own token handling, a call their granted scope allows.
    client = (
        lark.Client.builder()
        .app_id(app_id)
        .app_secret(secret)
        .domain(base_url)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )
    r = client.contact.v3.user.get(GetUserRequest.builder().user_id(ZHANG_WEI).build())
    check(f"{name} contact get user", r, r.success() and r.data.user.open_id == ZHANG_WEI)


WS_TEXTS = ["hello over the long connection", "hello again after a reconnect"]


def ws_client(base_url):
    """Child process: `lark_oapi.ws.Client` against the sandbox. Prints each
    im.message.receive_v1 as one JSON line; after the last expected one, lets the SDK send
    its ack, then exits. A process, not a thread: `start()` blocks forever on the SDK's
    module-level event loop."""
    seen = []

    def on_message(data):
        m = data.event.message
        print(json.dumps({
            "event_id": data.header.event_id,
            "event_type": data.header.event_type,
            "chat_id": m.chat_id,
            "content": m.content,
            "sender": data.event.sender.sender_id.open_id,
        }), flush=True)
        seen.append(data.header.event_id)
        if len(seen) == len(WS_TEXTS):
            # The ack goes out after this handler returns; give it a moment.
            threading.Timer(1.0, os._exit, (0,)).start()

    handler = (
        lark.EventDispatcherHandler.builder("", "")
        .register_p2_im_message_receive_v1(on_message)
        .build()
    )
    client = lark.ws.Client(
        APP_ID, APP_SECRET, event_handler=handler, domain=base_url, log_level=lark.LogLevel.ERROR
    )
    client.start()


def wait_for(what, cond, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    raise TimeoutError(what)


def check_long_connection(base_url):
    """The SDK's WebSocket client connects (endpoint, handshake, ping/pong), receives a
    message a user "posts" through the control path and acks it; after the sandbox drops
    the connection it reconnects by itself and receives the next one."""
    name = "ws.Client im.message.receive_v1"
    ws = lambda: control(base_url, "GET", "/ws")  # noqa: E731
    # Quick reconnects: the SDK waits ReconnectNonce × random() before the first attempt.
    control(base_url, "PATCH", "/options", {
        "ws_reconnect_nonce_secs": 1, "ws_reconnect_interval_secs": 1,
    })
    before = ws()["stats"]
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--ws-client", base_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []
    logs = []

    def read():
        # The SDK logs to stdout too; events are the JSON lines.
        for line in child.stdout:
            (lines if line.startswith("{") else logs).append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    problems = []

    def acked(event_id):
        return any(e["event_id"] == event_id and e["acked"] for e in ws()["events"])

    try:
        for i, text in enumerate(WS_TEXTS):
            if i == 0:
                wait_for("a connection", lambda: ws()["stats"]["live"] > 0)
            else:
                # Drop the connection: the event waits in the queue or goes to the new one.
                control(base_url, "POST", "/ws/disconnect", {})
            posted = control(base_url, "POST", "/incoming", {
                "chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": text,
            })
            wait_for(f"event {i + 1}", lambda: len(lines) > i)
            got = json.loads(lines[i])
            if got.get("event_id") != posted.get("event_id"):
                problems.append(f"event_id {got.get('event_id')} != {posted.get('event_id')}")
            if got.get("event_type") != "im.message.receive_v1":
                problems.append(f"event_type {got.get('event_type')}")
            if got.get("chat_id") != ALL_HANDS_CHAT or got.get("sender") != ZHANG_WEI:
                problems.append(f"chat/sender {got}")
            if json.loads(got.get("content") or "{}").get("text") != text:
                problems.append(f"content {got.get('content')}")
            wait_for(f"the ack of event {i + 1}", lambda: acked(posted["event_id"]), 5)
        stats = ws()["stats"]
        if stats["connections"] < before["connections"] + 2 or stats["pings"] == 0:
            problems.append(f"no reconnect or no ping: {stats}")
    except (TimeoutError, ValueError, KeyError) as e:
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        control(base_url, "PATCH", "/options", {
            "ws_reconnect_nonce_secs": 30, "ws_reconnect_interval_secs": 120,
        })
    if problems:
        failures.append(name)
        print(f"sdk {name}: FAILED: {'; '.join(problems)}")
        print("".join(logs[-20:]), end="")
    else:
        print(f"sdk {name} (and a reconnect): ok")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--ws-client":
        ws_client(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1]))
