package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

// upload serves POST /v1/collections/{collection}/files: the files of a
// multipart/form-data body (every part with a file name), or a raw body
// named by ?name= (curl --data-binary @a.docx '…/files?name=a.docx'). The
// answer is the JSON of UploadFilesResponse, as on gRPC.
func upload(svc *service.Service, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files, err := uploadedFiles(r)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				WriteError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "upload over the limit of "+mib(MaxBodyBytes), "")
				return
			}
			WriteError(w, http.StatusBadRequest, codes.InvalidArgument, err.Error(), "")
			return
		}
		res, err := svc.UploadFiles(r.Context(), r.PathValue("collection"), files)
		if err != nil {
			st := status.Convert(grpcapi.ToStatus(logger, err))
			field := ""
			var fe *service.FieldError
			if errors.As(err, &fe) {
				field = fe.Field
			}
			WriteError(w, runtime.HTTPStatusFromCode(st.Code()), st.Code(), st.Message(), field)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		b, err := protoJSON.Marshal(&retrievalv1.UploadFilesResponse{Files: grpcapi.FileResultsToProto(res)})
		if err != nil {
			WriteError(w, http.StatusInternalServerError, codes.Internal, "internal error", "")
			return
		}
		w.Write(b)
	})
}

// uploadedFiles reads the files of an upload request.
func uploadedFiles(r *http.Request) ([]service.UploadFile, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		name := r.URL.Query().Get("name")
		if name == "" {
			return nil, errors.New("a raw upload needs ?name=FILE (its extension says the format); or send multipart/form-data")
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		return []service.UploadFile{{Name: name, Data: b}}, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	var files []service.UploadFile
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if p.FileName() == "" {
			continue // a form field, not a file
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		files = append(files, service.UploadFile{Name: p.FileName(), Data: b})
	}
}

var protoJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
