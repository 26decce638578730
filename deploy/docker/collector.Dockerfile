# syntax=docker/dockerfile:1
# The collector image: a static Go binary on distroless/static, running as the
# non-root user 65532. Build from the repository root (make images):
#
#   docker build -f deploy/docker/collector.Dockerfile \
#     --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse --short=12 HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t ghcr.io/punchflow/collector:v1.2.3 .
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Module files first, so that the download layer is reused until they change.
COPY proto/go.mod proto/go.sum proto/
COPY platform/go.mod platform/go.sum platform/
COPY services/collector/go.mod services/collector/go.sum services/collector/
RUN --mount=type=cache,target=/go/pkg/mod \
    cd services/collector && GOWORK=off go mod download
COPY proto/ proto/
COPY platform/ platform/
COPY services/collector/ services/collector/
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
# CGO off: a static binary that needs no libc. timetzdata: time zones are
# compiled in, whatever the base image carries.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd services/collector && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOWORK=off \
    go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X github.com/punchflow/punchflow/platform/version.Version=${VERSION} -X github.com/punchflow/punchflow/platform/version.Commit=${COMMIT} -X github.com/punchflow/punchflow/platform/version.Date=${DATE}" \
      -o /out/collector .

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
LABEL org.opencontainers.image.title="punchflow collector" \
      org.opencontainers.image.source="https://github.com/punchflow/punchflow" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}"
COPY --from=build /out/collector /usr/local/bin/collector
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/collector"]
