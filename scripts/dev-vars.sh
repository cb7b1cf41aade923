# Sourced by start.sh and bench.sh: local secrets in .dev.vars (git-ignored). A missing entry
# is added with a fresh random value; an existing one is never overwritten. Sets ADMIN_TOKEN.

dev_vars="$ROOT/.dev.vars"
random_secret() { node -e "process.stdout.write(require('crypto').randomBytes(32).toString('$1'))"; }
touch "$dev_vars" && chmod 600 "$dev_vars"
if ! grep -q '^ADMIN_TOKEN=.' "$dev_vars"; then
  echo "ADMIN_TOKEN=kwadmin_$(random_secret base64url)" >> "$dev_vars"
  say "added a random ADMIN_TOKEN to .dev.vars"
fi
if ! grep -q '^VAULT_KEKS=.' "$dev_vars"; then
  echo "VAULT_KEKS=k1:$(random_secret base64)" >> "$dev_vars"
  say "added a random VAULT_KEKS to .dev.vars"
fi
ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' "$dev_vars" | tr -d '"' | head -n1)
