"""Where a session's runs go: one lane per GPU of this box, or a GPU station per GPU of a Ray
cluster; both see the runner only through session's port. May import: session and below.
"""
