# zhisou's container image: one static binary on distroless, run as a
# non-root user, its data directory a volume.
#
#   docker build -t zhisou .
#   docker volume create zhisou-data
#   # Beyond loopback the server needs API keys: create the first (printed once).
#   docker run --rm -v zhisou-data:/data zhisou keys create -name admin -role admin -collections '*'
#   docker run -d -p 7700:7700 -p 7701:7701 -v zhisou-data:/data zhisou
#
# Three of these as replicas of one write log: compose.yaml (docs/replication.md).
#
# TestDockerfile (cmd/zhisou) runs this file's CMD, HEALTHCHECK and key step
# with the binary as the image's user; the image itself is built by docker.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/zhisou ./cmd/zhisou && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/zhisou /usr/local/bin/zhisou
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV ZHISOU_STORE=/data
VOLUME /data
# gRPC, and HTTP/JSON with /metrics, /healthz, /readyz, /mcp and /console/.
EXPOSE 7700 7701
HEALTHCHECK --interval=10s --timeout=5s --start-period=2m --retries=3 CMD ["/usr/local/bin/zhisou", "health", "-addr", "127.0.0.1:7700"]
ENTRYPOINT ["/usr/local/bin/zhisou"]
CMD ["serve", "-addr", "0.0.0.0:7700", "-http-addr", "0.0.0.0:7701"]
