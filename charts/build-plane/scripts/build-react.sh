# build-step (react): build the app with a generated two-stage Dockerfile (node, then nginx)
# and save the image to IMAGE_TAR. The Dockerfile is fixed text; the node version and the
# base images reach it only as build arguments.
# Env: WORKSPACE, IMAGE_NAME, IMAGE_TAG, GIT_REVISION, APP_PATH, NODE_VERSION, NODE_IMAGE,
# NGINX_IMAGE.
require IMAGE_NAME IMAGE_TAG NODE_VERSION NODE_IMAGE NGINX_IMAGE
check_revision
case $NODE_VERSION in
*[!0-9A-Za-z._-]*) die "node-version may only contain letters, digits, '.', '_' and '-', got: $NODE_VERSION" ;;
esac
APP_PATH=${APP_PATH:-}
app=${APP_PATH#/}
check_rel_path app-path "$app"

# The app directory when it exists, else the repository root (as upstream).
if [ -n "$app" ] && [ -d "$SOURCE_DIR/$app" ]; then
	app_dir="$SOURCE_DIR/$app"
else
	app_dir=$SOURCE_DIR
fi
check_inside app-path "$app_dir" "$SOURCE_DIR"
log "Building from source directory $app_dir"

# Replace (never write through) whatever the repository has under these names.
rm -f "$app_dir/Dockerfile" "$app_dir/default.conf"
cat >"$app_dir/Dockerfile" <<'DOCKERFILE'
ARG NODE_IMAGE
ARG NODE_VERSION
ARG NGINX_IMAGE

FROM ${NODE_IMAGE}:${NODE_VERSION}-alpine AS builder
RUN npm install -g pnpm
WORKDIR /app
COPY . .
RUN if [ -f "package-lock.json" ]; then npm ci; \
    elif [ -f "yarn.lock" ]; then yarn install --frozen-lockfile; \
    elif [ -f "pnpm-lock.yaml" ]; then pnpm install --frozen-lockfile; \
    else echo "No lock file found" && exit 1; fi
RUN npm run build || yarn run build || pnpm run build

FROM ${NGINX_IMAGE}
COPY --from=builder /app/default.conf /etc/nginx/conf.d/default.conf
COPY --from=builder /app/build /usr/share/nginx/html/
DOCKERFILE

cat >"$app_dir/default.conf" <<'NGINX'
server {
  listen 80;
  location / {
    root   /usr/share/nginx/html;
    index  index.html;
    try_files $uri /index.html;
  }
}
NGINX

image="$IMAGE_NAME:$IMAGE_TAG-$GIT_REVISION"
log "Building $image"
podman build -t "$image" -f "$app_dir/Dockerfile" \
	--build-arg "NODE_IMAGE=$NODE_IMAGE" \
	--build-arg "NODE_VERSION=$NODE_VERSION" \
	--build-arg "NGINX_IMAGE=$NGINX_IMAGE" \
	"$app_dir"
rm -f "$IMAGE_TAR"
podman save -o "$IMAGE_TAR" "$image"
