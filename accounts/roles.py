"""The fixed set of roles a group can carry, and what each lets its members' API keys do.

A role is a set of scopes. A key whose member (its api-user) belongs to groups that carry roles may use only the
scopes those roles grant, on top of its own: effective scopes = key scopes ∩ ∪ role scopes. A member in no group
with a role keeps its key's scopes, so roles only ever narrow what a key can do; they never add a scope the key
lacks. The set is fixed (not editable through the API) so that what a role means cannot drift between
workspaces; docs/teams.md lists it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    id: str
    title: str
    description: str
    scopes: frozenset[str]


ROLES: tuple[Role, ...] = (
    Role(
        "role_admin",
        "Admin",
        "Everything: minds, knowledge, chat, conversations, members and groups, API keys.",
        frozenset(
            {
                "minds:read",
                "minds:write",
                "minds:chat",
                "knowledge:search",
                "conversations:read",
                "users:manage",
                "keys:manage",
            }
        ),
    ),
    Role(
        "role_builder",
        "Builder",
        "Creates and edits minds and their knowledge, chats with them and reads their conversations.",
        frozenset({"minds:read", "minds:write", "minds:chat", "knowledge:search", "conversations:read"}),
    ),
    Role(
        "role_analyst",
        "Analyst",
        "Reads minds, searches knowledge and reads conversations and chat logs; changes nothing.",
        frozenset({"minds:read", "knowledge:search", "conversations:read"}),
    ),
    Role(
        "role_member",
        "Member",
        "Chats with the minds open to them and searches their knowledge.",
        frozenset({"minds:read", "minds:chat", "knowledge:search"}),
    ),
)

ROLES_BY_ID = {role.id: role for role in ROLES}


def scopes_of_roles(role_ids) -> frozenset[str]:
    scopes: set[str] = set()
    for role_id in role_ids:
        role = ROLES_BY_ID.get(role_id)
        if role is not None:
            scopes |= role.scopes
    return frozenset(scopes)
