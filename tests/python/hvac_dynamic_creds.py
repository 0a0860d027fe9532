"""Dynamic credentials the way hvac users read them (issue 13): the
database engine's `generate_credentials` (GET <mount>/creds/<role>), then a
renewal through `sys.renew_lease`. Prints one JSON object on stdout:
username, password, lease_id, lease_duration, renewable and the renewed
lease_duration.

    python hvac_dynamic_creds.py <address> <token> <mount> <role> <increment seconds>
"""

import json
import sys

import hvac


def main() -> None:
    address, token, mount, role, increment = sys.argv[1:6]
    client = hvac.Client(url=address, token=token)
    answer = client.secrets.database.generate_credentials(name=role, mount_point=mount)
    renewed = client.sys.renew_lease(lease_id=answer["lease_id"], increment=int(increment))
    json.dump(
        {
            "username": answer["data"]["username"],
            "password": answer["data"]["password"],
            "lease_id": answer["lease_id"],
            "lease_duration": answer["lease_duration"],
            "renewable": answer["renewable"],
            "renewed_duration": renewed["lease_duration"],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
