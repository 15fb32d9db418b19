"""
examples/tiny.py of mltrace 0.17, ported to compare lineage (test_mltrace017.py).

This file contains one component, a function to increment
a number, and runs that component 10 times. The output of
the ith component run is the input to the (i+1)th component
run. Thus if you trace the last output in the UI, you should
see that it depends on 9 things.

Changed from the original: random is seeded, so that the identifier, and the pointer names
made from it, are the same in every run of the program (and under Python 3.9 and 3.11);
the program ends by printing its observations (observe.py).
"""

import random
import string

import observe

from mltrace import create_component, register

random.seed(17)
_identifier = "".join(random.choice(string.ascii_lowercase) for i in range(10))


@register(component_name="tiny", input_vars=["inp_str"], output_vars=["out_str"])
def increment(inp: int) -> int:
    inp_str = f"{_identifier}_{str(inp)}"  # noqa: F841 (logged by register)
    out_str = f"{_identifier}_{str(inp + 1)}"  # noqa: F841
    return inp + 1


if __name__ == "__main__":
    # Create component
    create_component(
        name="tiny",
        description="Example of a tiny component",
        owner="groot",
        tags=["example"],
    )

    # Run the tiny function with some fake inputs and outputs
    i = 0
    while i < 10:
        i = increment(i)

    observe.report(backtraces={"last output": f"{_identifier}_{i}", "first output": f"{_identifier}_1"})
