#!/bin/sh
# The ctest fixture data.fill: imports the shared data (../shared/data beside
# the repository) into the build tree's cache with `usagi data get --from`,
# as a user imports a local copy, so that the tests read data sets the way
# experiments do. Without the shared data it fills nothing, and the tests
# that need a data set skip with the reason.
# Usage: data_fill.sh path/to/usagi CACHE SHARED
set -u
usagi=$1 cache=$2 shared=$3
if [ ! -d "$shared" ]; then
  echo "no shared data at $shared: the tests that need data sets will skip"
  exit 0
fi
export USAGI_DATA="$cache"
"$usagi" data get ptb tinyshakespeare dlfs2 word2vec_eval english_text dailydialog digits \
  --from "$shared" --quiet || exit 1
# The shared MNIST lacks the 60,000 training images: its test split only.
"$usagi" data get mnist --from "$shared" --partial --quiet || exit 1
"$usagi" data list
