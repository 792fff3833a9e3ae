"""The smallest Flask app, served by the same gunicorn settings as the edge: the benchmark's floor."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/ping")
def ping():
    return jsonify(status="ok")
