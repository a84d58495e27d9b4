# Sourced by run-with-services.sh: stop the throwaway PostgreSQL cluster and remove its folder.
if [ -n "${EXHUNT_PG_ROOT:-}" ] && [ -d "$EXHUNT_PG_ROOT/data" ]; then
  exhunt_pg_as "$EXHUNT_PG_CTL" -D "$EXHUNT_PG_ROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$EXHUNT_PG_ROOT"
  unset EXHUNT_TEST_PG_URL
fi
