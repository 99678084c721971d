"""Code that AWS Lambda runs: one module per function, stdlib and boto3 only (what Lambda's python3.12
runtime provides), each deployed as an archive of its single file.

Must not import: anything of the project (`specs`, `components`, `mlops`, the containers' packages):
each module is shipped alone to Lambda.
"""
