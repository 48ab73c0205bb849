#!/usr/bin/env python3
"""The README's grpcurl walk-through, run by a client that knows nothing of
Tyboo's proto files but what server reflection tells it (as grpcurl does).

Usage: walkthrough.py HOST:PORT OWNER_API_KEY WORKSPACE_ID

Every step sends JSON, as `grpcurl -d '…'` does, and prints the JSON reply.
Exits non-zero with a message on the first step that does not behave.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


class Reflected:
    """Calls methods by full name with JSON bodies, like grpcurl."""

    def __init__(self, target):
        self.channel = grpc.insecure_channel(target)
        self.database = ProtoReflectionDescriptorDatabase(self.channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self):
        return sorted(self.database.get_services())

    def call(self, method, body, token=None):
        service_name, method_name = method.rsplit("/", 1)
        service = self.pool.FindServiceByName(service_name)
        descriptor = service.FindMethodByName(method_name)
        request_class = message_factory.GetMessageClass(descriptor.input_type)
        response_class = message_factory.GetMessageClass(descriptor.output_type)
        request = json_format.Parse(json.dumps(body), request_class())
        stub = self.channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        metadata = [("authorization", f"Bearer {token}")] if token else None
        reply = stub(request, metadata=metadata, timeout=10)
        return json.loads(json_format.MessageToJson(reply))


def step(title):
    print(f"--- {title}", flush=True)


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


def main():
    target, api_key, workspace_id = sys.argv[1:4]
    client = Reflected(target)

    step("grpcurl -plaintext HOST list")
    services = client.services()
    print("\n".join(services))
    for wanted in (
        "tyboo.tenancy.v1.TenancyService",
        "tyboo.tenancy.v1.AuthService",
        "grpc.health.v1.Health",
    ):
        expect(wanted in services, f"reflection does not list {wanted}")
    expect(
        not any(name.startswith(("tyboo.executor.", "tyboo.vault.")) for name in services),
        f"the tenancy port lists services it does not serve: {services}",
    )

    step("a service of another port is refused by name")
    elsewhere = client.channel.unary_unary(
        "/tyboo.executor.v1.WorkflowService/ListNodeTypes",
        request_serializer=lambda _: b"",
        response_deserializer=lambda data: data,
    )
    try:
        elsewhere(None, timeout=10)
        expect(False, "the tenancy port answered a WorkflowService call")
    except grpc.RpcError as error:
        print(error.details())
        expect(error.code() == grpc.StatusCode.UNIMPLEMENTED, f"got {error.code()}")
        expect(
            "tyboo.executor.v1.WorkflowService" in error.details()
            and "served by the executor" in error.details(),
            f"the refusal does not say where the service is: {error.details()!r}",
        )

    step("grpc.health.v1.Health/Check")
    health = client.call("grpc.health.v1.Health/Check", {"service": "tyboo.tenancy.v1.TenancyService"})
    print(json.dumps(health))
    expect(health.get("status") == "SERVING", f"health is {health}")

    step("AuthService/Authenticate")
    auth = client.call("tyboo.tenancy.v1.AuthService/Authenticate", {"api_key": api_key})
    token = auth["token"]
    expect(auth["principal"]["workspaceId"] == workspace_id, "token is for another workspace")

    step("TenancyService/ListMembers")
    members = client.call(
        "tyboo.tenancy.v1.TenancyService/ListMembers", {"workspace_id": workspace_id}, token
    )
    print(json.dumps(members))
    expect(len(members["members"]) >= 1, "the owner is not listed")

    step("TenancyService/CreateInvitation")
    email = f"grpcurl-{workspace_id[:8]}@example.com"
    invitation = client.call(
        "tyboo.tenancy.v1.TenancyService/CreateInvitation",
        {"workspace_id": workspace_id, "email": email, "role": "ROLE_EDITOR"},
        token,
    )
    print(json.dumps(invitation["invitation"]))

    step("TenancyService/AcceptInvitation")
    accepted = client.call(
        "tyboo.tenancy.v1.TenancyService/AcceptInvitation",
        {"token": invitation["token"], "display_name": "Grace"},
    )
    user_id = accepted["member"]["userId"]
    expect(accepted["member"]["role"] == "ROLE_EDITOR", f"accepted as {accepted['member']}")

    step("TenancyService/UpdateMemberRole")
    updated = client.call(
        "tyboo.tenancy.v1.TenancyService/UpdateMemberRole",
        {"workspace_id": workspace_id, "user_id": user_id, "role": "ROLE_ADMIN"},
        token,
    )
    print(json.dumps(updated))
    expect(updated["member"]["role"] == "ROLE_ADMIN", "promotion did not stick")

    step("TenancyService/RemoveMember")
    client.call(
        "tyboo.tenancy.v1.TenancyService/RemoveMember",
        {"workspace_id": workspace_id, "user_id": user_id},
        token,
    )
    members = client.call(
        "tyboo.tenancy.v1.TenancyService/ListMembers", {"workspace_id": workspace_id}, token
    )
    expect(
        all(member["userId"] != user_id for member in members["members"]),
        "removed member still listed",
    )

    step("a call without a token is refused")
    try:
        client.call("tyboo.tenancy.v1.TenancyService/ListMembers", {"workspace_id": workspace_id})
        expect(False, "an anonymous call was answered")
    except grpc.RpcError as error:
        expect(error.code() == grpc.StatusCode.UNAUTHENTICATED, f"got {error.code()}")

    print("walkthrough ok", flush=True)


if __name__ == "__main__":
    main()
