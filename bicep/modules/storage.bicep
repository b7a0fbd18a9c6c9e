// One storage account holds Platform's data (tables, blobs, queues), the Functions host's own state (locks,
// timer schedules, queue-trigger bookkeeping) and the deployment package that Flex Consumption runs from.
// Nothing reaches it with a key: shared-key access is off and the app's identity gets data roles only.

@description('Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region (ignored when an existing account is used).')
param location string

@description('Tags for a new account.')
param tags object

@description('Create the account (true) or use an existing account of this name in this resource group (false). An existing account keeps its own settings; only the containers, queues and role assignments below are added to it.')
param createAccount bool = true

@description('Replication of a new account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_LRS'

@description('Blob container that holds the deployment package Flex Consumption runs from.')
param deploymentContainerName string

@description('Queues to declare up front (the app also creates every queue it uses at start, idempotently).')
param queueNames string[]

@description('Days a deleted blob or container can still be restored (new accounts only).')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 7

@description('Principal (object) ID of the function app identity that gets the data roles.')
param appPrincipalId string

// Built-in role definitions (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
// Blob Data Owner, not Contributor: the Functions host needs it for its blob leases and for the package container.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource createdAccount 'Microsoft.Storage/storageAccounts@2024-01-01' = if (createAccount) {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // No account keys and no SAS signed with them: every caller authenticates with Microsoft Entra ID.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource createdBlobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = if (createAccount) {
  parent: createdAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

// From here on the account is addressed the same way whether this deployment created it or not.
resource account 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: name
  dependsOn: [
    createdAccount
  ]
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' existing = {
  parent: account
  name: 'default'
  dependsOn: [
    createdBlobService
  ]
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' existing = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Platform function app: blobs (data, host leases, deployment package)'
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageQueueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Platform function app: queue functions and the job engine task hub (queues it creates at start)'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Platform function app: tables, the job engine task hub tables included (created at start)'
  }
}

@description('Name of the account.')
output name string = account.name

@description('Blob service URI (https://<account>.blob.<suffix>/).')
output blobEndpoint string = account.properties.primaryEndpoints.blob

@description('Queue service URI.')
output queueEndpoint string = account.properties.primaryEndpoints.queue

@description('Table service URI.')
output tableEndpoint string = account.properties.primaryEndpoints.table

@description('URL of the container Flex Consumption deploys the package to.')
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
