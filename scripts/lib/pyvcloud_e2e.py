"""Drives this service with VMware's own vCloud Air client, the `VCA` class
of pyvcloud 18, as the black-box test `vca_client` asks:

    python3 pyvcloud_e2e.py URL USER_NAME PASSWORD NEW_PASSWORD

with IAM_TEST_PYVCLOUD naming the folder of pyvcloud converted to Python 3
(scripts/lib/test_tools.sh). USER_NAME is an Account Administrator of a
tenant. The client logs in, lists users and roles, creates a user, has its
password reset by e-mail, creates and deletes another, and changes its own password; each
step is the client's own request. Prints one line per step, then the JSON
of what it saw; exits 1 at the first failure.
"""
import json
import os
import sys

sys.path.insert(0, os.environ["IAM_TEST_PYVCLOUD"])

from pyvcloud.vcloudair import VCA  # noqa: E402


def step(text):
    print(f"ok: {text}", flush=True)


def connect(url, user_name, password):
    vca = VCA(host=url, username=user_name, service_type="ondemand", version="5.7", verify=False)
    if not vca.login(password=password):
        status = vca.response.status_code if vca.response is not None else "none"
        raise SystemExit(f"login of {user_name} failed: {status}")
    return vca


def main():
    url, user_name, password, new_password = sys.argv[1:5]
    seen = {}
    vca = connect(url, user_name, password)
    step("logs in")
    seen["instances"] = vca.instances
    step("lists its instances")
    before = vca.get_users()
    seen["users_before"] = [user["userName"] for user in before]
    step("lists users")
    roles = vca.get_roles()
    seen["roles"] = {role["name"]: role["rights"] for role in roles}
    step("lists roles with their rights")
    created = vca.add_user("jack@acme.example", "Jack", "Sprat", ["End User"])
    seen["created"] = created["userName"]
    step("creates a user")
    if not vca.reset_password(created["id"]):
        raise SystemExit("reset failed")
    seen["reset_user"] = created["id"]
    step("resets the user's password by e-mail")
    doomed = vca.add_user("kim@acme.example", "Kim", "Short", ["End User"])
    if not vca.del_user(doomed["id"]):
        raise SystemExit("delete failed")
    seen["users_after"] = [user["userName"] for user in vca.get_users()]
    step("deletes the user")
    if not vca.change_password(password, new_password):
        raise SystemExit("change failed")
    step("changes its own password")
    seen["still_signed_in"] = [user["userName"] for user in vca.get_users()] != []
    connect(url, user_name, new_password)
    step("logs in with the new password")
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
