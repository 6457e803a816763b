"""How the programs are run, and the developer tooling around them: the supervisor of ``make up`` and its Procfile,
logging, progress lines, the open-file limit, the optional extras and the README's generated Layout section.

None of it is the wire contract or the settings: it is what a process or a developer needs around the simulator, the
bridge and the broker.
"""
