# Sourced by start.sh and bench.sh: local secrets in .dev.vars, made once, never overwritten.
# Sets ADMIN_TOKEN to the token in that file.

if [ ! -f "$ROOT/.dev.vars" ]; then
  random() { node -e "process.stdout.write(require('crypto').randomBytes(32).toString('$1'))"; }
  {
    echo "ADMIN_TOKEN=kwadmin_$(random base64url)"
    echo "VAULT_KEKS=k1:$(random base64)"
  } > "$ROOT/.dev.vars"
  chmod 600 "$ROOT/.dev.vars"
  say "created .dev.vars with a random ADMIN_TOKEN and VAULT_KEKS"
fi
ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' "$ROOT/.dev.vars" | tr -d '"' | head -n1)
