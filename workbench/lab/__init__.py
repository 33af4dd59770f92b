"""What a user explores with in JupyterLab: the launcher widget (`launcher`, training through
`training_process`), run comparison (`compare`) and explanations of logged models (`interpret`).

Each module is imported on its own (`from workbench.lab.launcher import Launcher`), so using one
does not load the others' widgets, pandas or TensorFlow.
"""
