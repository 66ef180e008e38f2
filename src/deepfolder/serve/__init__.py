"""``deepfolder serve``: a local web viewer of run directories.

Every citation of a report opens the exact evidence it names (a PDF page with the
passage highlighted, a video seeked to the cited second, sheet rows with their header,
an article with the chunk highlighted…); the checks, the trace and new runs are one
click away. ``catalog.py`` finds and reads run and batch directories, ``evidence.py``
turns an evidence id into what the side pane shows, ``jobs.py`` starts, cancels and
resumes runs in the background, ``pages.py`` writes the HTML and ``app.py`` wires the
routes, the token check and the server. Files are reached only through an evidence id
of a known run, never through a path from the request.
"""
