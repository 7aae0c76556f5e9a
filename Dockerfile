# The controller image that `render --control-plane` / `apply --control-plane` deploy
# (ghcr.io/openchoreo/buildplane:<version>):
#   docker build --build-arg BUILDPLANE_COMMIT=$(git rev-parse --short=12 HEAD) \
#     -t ghcr.io/openchoreo/buildplane:0.1.0 .
# The binary is built with the static-ssl feature (OpenSSL, libgit2, libssh2, zlib linked in);
# the runtime image holds only the C library, CA certificates and a non-root user (65532, the
# user the rendered Deployment runs as).
FROM docker.io/library/rust:1.95-bookworm AS build
ARG BUILDPLANE_COMMIT=unknown
ARG SOURCE_DATE_EPOCH
WORKDIR /src
COPY . .
RUN BUILDPLANE_COMMIT="$BUILDPLANE_COMMIT" cargo build --release --locked --features static-ssl \
 && if ldd target/release/buildplane | grep -E 'libssl|libcrypto|libgit2|libssh2|libz\.'; then \
      echo "the binary must not need these libraries" >&2; exit 1; fi \
 && target/release/buildplane version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/buildplane /usr/local/bin/buildplane
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/buildplane"]
CMD ["controller", "--metrics-addr", "0.0.0.0:9090"]
