#!/usr/bin/env bash
# `npm start`'s banner never prints the admin token, and the curl it prints reads the token
# from .dev.vars. Runs scripts/banner.sh, the banner start.sh prints, against a scratch checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
token="kwadmin_banner_check_$RANDOM$RANDOM"
printf 'ADMIN_TOKEN=%s\nVAULT_KEKS=k1:x\n' "$token" > "$scratch/.dev.vars"

banner=$(bash "$here/scripts/banner.sh" 8787 "$scratch")

fail() { echo "banner check failed: $*" >&2; exit 1; }
if grep -qF "$token" <<<"$banner"; then fail "the banner prints the admin token"; fi
grep -qF "$scratch/.dev.vars, the ADMIN_TOKEN= line" <<<"$banner" || fail "the banner does not say where the token is"
# The Authorization header of the printed curl, run as a shell would run it.
header=$(grep -o '"Authorization: Bearer \$(grep .*)"' <<<"$banner" | head -n1)
[ -n "$header" ] || fail "the printed curl does not read the token from .dev.vars"
[ "$(eval "echo $header")" = "Authorization: Bearer $token" ] || fail "the printed curl's header does not expand to the token: $header"
head -n 3 <<<"$banner" | grep -qF "console: http://127.0.0.1:8787/" || fail "the banner does not print the console URL first"
echo "banner check passed: the token is read from .dev.vars, never printed"
