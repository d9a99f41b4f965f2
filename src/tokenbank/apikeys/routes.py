"""Admin routes for service API keys: create, list, rotate, revoke (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tokenbank.apikeys import service
from tokenbank.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut
from tokenbank.apikeys.service import KeyView
from tokenbank.deps import AdminUser, SessionDep
from tokenbank.errors import error_responses

router = APIRouter(
    prefix="/api/admin/api-keys",
    tags=["admin"],
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
KeyId = Annotated[int, Path(ge=1, le=2**62)]


def key_out(k: KeyView) -> ApiKeyOut:
    return ApiKeyOut(
        id=k.id,
        name=k.name,
        prefix=k.prefix,
        scopes=sorted(k.scopes),
        created_at=k.created_at,
        revoked_at=k.revoked_at,
        rotated_from_id=k.rotated_from_id,
        active=k.active,
    )


@router.get("", operation_id="admin_list_api_keys")
async def list_api_keys(_admin: AdminUser, session: SessionDep) -> ApiKeyList:
    return ApiKeyList(items=[key_out(k) for k in await service.list_keys(session)])


@router.post("", operation_id="admin_create_api_key", status_code=201)
async def create_api_key(
    body: ApiKeyCreate, admin: AdminUser, session: SessionDep
) -> ApiKeyCreated:
    """A new key; its secret is in this answer only."""
    made = await service.create_key(session, body.name, body.scopes, created_by=admin.id)
    return ApiKeyCreated(key=key_out(made.key), secret=made.secret)


@router.post("/{key_id}/rotate", operation_id="admin_rotate_api_key", status_code=201)
async def rotate_api_key(key_id: KeyId, admin: AdminUser, session: SessionDep) -> ApiKeyCreated:
    """A new secret with the same name and scopes; the old key stops working at once."""
    made = await service.rotate_key(session, key_id, created_by=admin.id)
    return ApiKeyCreated(key=key_out(made.key), secret=made.secret)


@router.post("/{key_id}/revoke", operation_id="admin_revoke_api_key")
async def revoke_api_key(key_id: KeyId, _admin: AdminUser, session: SessionDep) -> ApiKeyOut:
    """Refused from the next request on, in every process (keys are never cached)."""
    return key_out(await service.revoke_key(session, key_id))
