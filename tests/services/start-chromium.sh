# Sourced by run-with-services.sh before pytest: the browser tests drive Debian's chromium.
# Installs it with apt-get only when it is missing (never `playwright install`); quiet and
# idempotent, and a failure here only makes the browser tests skip.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }) \
      || echo "start-chromium: could not install chromium; browser tests will skip" >&2
  else
    (sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
      || echo "start-chromium: chromium missing and not root; browser tests will skip" >&2
  fi
fi
