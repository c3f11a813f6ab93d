"""The agent core: the tool-calling loop, its LLM client, tools and tool servers, context budget,
runs, sessions, memory and long-running tasks. No HTTP here: ``sage_platform.server`` serves it,
Dagster's ``streaming_agent_job`` and the CLI drive it directly.

Usage::

    from sage_platform.agent.state import AgentState
    state = AgentState.create(Settings())
"""
