# SPDX-License-Identifier: Apache-2.0
# Weir UDF sample image: python/uppercase.py. Build from examples/udf/python:
#   docker build -f uppercase.Dockerfile -t weir-udf-python-uppercase .
FROM python:3.11-slim
WORKDIR /udf
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY weir_udf_proto.py _sample_server.py uppercase.py ./
USER 65532:65532
ENV PYTHONUNBUFFERED=1
EXPOSE 55554
# Listens on $UDF_PORT (default 55554, Weir's srp.grpcPort default).
ENTRYPOINT ["python3", "uppercase.py", "--host", "0.0.0.0"]
