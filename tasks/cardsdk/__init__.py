"""The Card SDK: prints cards and encodes their chips. It knows nothing of orders or workflows.

A production handler hands it a ``CardJob`` and gets a ``ProductionResult`` back, or a
``CardSdkError`` whose message is written for the operator.
"""
