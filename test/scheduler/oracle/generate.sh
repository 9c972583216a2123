#!/usr/bin/env bash
# Regenerates test/scheduler/fixtures/quartz-cases.json with the real Quartz
# CronExpression (Quartz 2.3.2 as packaged by Debian). Not run by the tests.
#
# Prerequisites (Debian 12): apt-get install -y libquartz2-java default-jdk-headless
# Usage:                     bash test/scheduler/oracle/generate.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
jar="${QUARTZ_JAR:-/usr/share/java/quartz2.jar}"
version="$(dpkg-query -W -f='${Version}' libquartz2-java 2>/dev/null || echo unknown)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

javac -nowarn -cp "$jar" -d "$tmp" "$here/QuartzOracle.java"
(cd "$root" && npx tsx test/scheduler/oracle/cases.ts) > "$tmp/cases.tsv"
java -cp "$tmp:$jar" QuartzOracle "libquartz2-java $version" < "$tmp/cases.tsv" \
  > "$root/test/scheduler/fixtures/quartz-cases.json"
echo "wrote test/scheduler/fixtures/quartz-cases.json ($(grep -c '"expected"' "$root/test/scheduler/fixtures/quartz-cases.json") fire cases, $(grep -c '"valid"' "$root/test/scheduler/fixtures/quartz-cases.json") validity cases)"
